// SPDX-License-Identifier: MIT
/*
 * fuzz.c - differential fuzzing of libgmem against the reference model
 * (ref.c), and of its C API with hostile arguments.
 *
 * An input is decoded into a short sequence of commands.  Most are trace
 * commands (one pool, then files of every policy, b-adaptive with small
 * merge delays, mms, forks, mappings, host and guest accesses, pins,
 * conversions, punches, IOMMU maps, poison, compacts and closes).  Each
 * runs on libgmem through the public API (gmem.h), with the same name
 * tables and the same printing as `gmem replay`, and on the reference;
 * their results must print the same.
 *
 * Mixed into the same run are hostile commands: a second pool with files,
 * mms and pins of its own (a second reference model follows it), trace
 * commands with offsets and lengths near 2^64 or wrapping, and direct C
 * API calls that the trace language cannot express: an mm of one pool
 * with a file of the other, forks and statistics across pools, unpins of
 * ids of the other pool or of no pin, unknown flag bits, closed file
 * handles, NULL pointers where gmem.h says -EINVAL, bad pool and file
 * parameters, b-adaptive's merge calls.  Each such call must return what
 * include/gmem.h and docs/DECISIONS.md say, and one that fails must
 * change nothing: the statistics of both pools (pool-wide and of every
 * open file) are compared before and after it.
 *
 * After every command gmem_check() must pass on both pools and their
 * statistics (pool-wide and of every open file, every TRACE.md key but
 * meta_bytes) must equal their model's.  On a difference the command
 * sequence is printed as a trace that `gmem replay` runs (every result the
 * reference's, as an `expect`; the second pool's commands and the C API
 * calls as `#` comments), and the fuzzer aborts.
 *
 * Built with -DFUZZ_LIBFUZZER it is a libFuzzer target; without, a
 * program that replays inputs:
 *
 *   fuzz-replay [-t] FILE|DIR...
 *
 * runs every file (a directory: every file in it), prints the reproducer
 * of each failing one, and ends with "N passed, N failed" (exit 1 if any
 * failed).  -t prints every input's trace, failing or not.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gmem.h"
#include "ref.h"

#define MAX_OPS 64
#define MAX_OPS_1G 16
#define NR_FILES 4
#define NR_MMS 4
#define NR_PINS 8
#define NR_CLOSED 4		/* closed handles kept per pool */
#define NR_DEAD 8		/* unpinned ids kept per pool */
#define HOSTILE 0xe0		/* opcode bytes from here on are hostile */

/* ------------------------------------------------------------ strings */

struct sbuf {
	char *buf;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	if (sb->len + (size_t)n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 4096;

		while (cap < sb->len + (size_t)n + 1)
			cap *= 2;
		sb->buf = realloc(sb->buf, cap);
		if (!sb->buf)
			abort();
		sb->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

/* --------------------------------------------------------- the input */

struct input {
	const uint8_t *d;
	size_t n, i;
};

/* The next byte; 0 once the input is used up. */
static uint8_t next(struct input *in)
{
	return in->i < in->n ? in->d[in->i++] : 0;
}

/* --------------------------------------------------------- one run */

enum cmd {
	C_POOL, C_FILE, C_CLOSE, C_MM, C_MMAP, C_FAULT, C_WRITE, C_READ,
	C_PIN, C_UNPIN, C_CONVERT, C_PUNCH, C_GUEST, C_GREAD, C_GWRITE,
	C_IOMMU, C_POISON, C_COMPACT,
};

/* A decoded command. */
struct op {
	enum cmd cmd;
	int file, mm, pin, from;	/* name indices; from: -1 no fork */
	uint64_t off, len, size;
	uint8_t val;
	int policy;
	unsigned int delay;		/* b-adaptive: merge_delay=, if has_delay */
	bool shared, w, longterm, exclusive, to_shared, zero, has_len;
	bool has_delay;
};

/*
 * A pool with its objects and its reference model.  World 0 is the
 * input's pool, the one its trace describes; world 1 a second pool that
 * hostile commands create, whose commands print as `# pool2:` comments.
 */
struct world {
	struct ref *ref;
	struct gmem_pool *pool;
	struct gmem_file *file[NR_FILES];
	uint64_t fsize[NR_FILES];	/* by name, for decoding offsets */
	int fpolicy[NR_FILES];		/* index into policy_lib[] */
	struct gmem_mm *mm[NR_MMS];
	bool pin_held[NR_PINS];
	uint64_t pin_id[NR_PINS];
	/* handles of closed files: valid for error reporting until the pool
	 * is destroyed (gmem_file_close()) */
	struct gmem_file *closed[NR_CLOSED];
	uint64_t closed_size[NR_CLOSED];
	int closed_name[NR_CLOSED];
	int closed_policy[NR_CLOSED];
	unsigned int nclosed;		/* ever closed; a ring of NR_CLOSED */
	uint64_t dead_id[NR_DEAD];	/* ids unpinned; a ring of NR_DEAD */
	unsigned int ndead;
	uint64_t psize, hpp, count;
	bool none;
	const char *pfx;		/* "" or "# pool2: " */
	const char *label;		/* "pool1" or "pool2" */
};

struct run {
	struct world w[2];
	int cur;			/* the world trace commands act on */
	uint64_t max_id;		/* the largest pin id seen */
	char note[256];			/* a failure lib_run() found */
	struct sbuf trace;
	bool failed;
};

#define POL_ADAPTIVE 4		/* the index of b-adaptive below */
static const char *const policy_word[] = {
	"4k", "a", "b-eager", "b-lazy", "b-adaptive",
};
static const enum gmem_policy policy_lib[] = {
	GMEM_POLICY_4K, GMEM_POLICY_A, GMEM_POLICY_B_EAGER, GMEM_POLICY_B_LAZY,
	GMEM_POLICY_B_ADAPTIVE,
};
static const enum ref_policy policy_ref[] = {
	REF_4K, REF_A, REF_B_EAGER, REF_B_LAZY, REF_B_ADAPTIVE,
};

static const char *fname(int i)
{
	static const char *const n[NR_FILES] = { "f0", "f1", "f2", "f3" };
	return n[i];
}

static const char *mname(int i)
{
	static const char *const n[NR_MMS] = { "m0", "m1", "m2", "m3" };
	return n[i];
}

static const char *pname(int i)
{
	static const char *const n[NR_PINS] = {
		"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7",
	};
	return n[i];
}

/* The file's size as far as decoding knows (a huge page if undefined). */
static uint64_t fsize_of(const struct world *w, int f)
{
	return w->file[f] ? w->fsize[f] : w->psize;
}

static uint64_t npages_of(const struct world *w, int f)
{
	return fsize_of(w, f) / 4096;
}

/*
 * A page index in file @f: interesting places inside huge pages, the first
 * pages of the first two, anywhere, or the end of the file (and past it).
 */
static uint64_t dec_page(struct input *in, const struct world *w, int f)
{
	uint64_t np = npages_of(w, f), hpp = w->hpp, k;
	uint8_t a = next(in), b = next(in);
	const uint64_t within[16] = {
		0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 511, 512, 513,
		hpp / 2, hpp - 2, hpp - 1,
	};

	switch (a >> 6) {
	case 0:
		return ((a >> 4) & 3) * hpp + within[a & 15] % hpp;
	case 1:
		return (a & 63) + (b & 1) * hpp;
	case 2:
		return ((((uint64_t)a & 63) << 8) | b) * np / 16384;
	default:
		k = b & 3;
		if (a & 1)
			return np + k;
		return np > k ? np - 1 - k : 0;
	}
}

/*
 * A range's length in pages from one byte, and now and then an invalid
 * range: an unaligned offset or length, or a length of zero.
 */
static void dec_range(struct input *in, const struct world *w, int f,
		      uint64_t page, uint64_t *off, uint64_t *len)
{
	uint64_t np = npages_of(w, f), hpp = w->hpp, n;
	uint8_t c = next(in);
	const uint64_t lens[16] = {
		1, 1, 2, 3, 4, 8, 16, 511, 512, 513, hpp - 1, hpp, hpp + 1,
		2 * hpp, np > page ? np - page : 1, np,
	};

	n = lens[c & 15];
	*off = page * 4096;
	*len = n * 4096;
	switch (c >> 4) {
	case 13:
		*off += 0x800;
		break;
	case 14:
		*len += 0x800;
		break;
	case 15:
		*len = 0;
		break;
	}
}

/* Byte offsets inside a page for host and guest accesses. */
static uint64_t dec_inpage(unsigned int i)
{
	static const uint64_t o[8] = { 0, 1, 0x800, 0xfff, 0, 0x10, 1, 0xfff };
	return o[i & 7];
}

/* Decodes the trace command of opcode byte @b (below HOSTILE). */
static void decode(struct input *in, const struct world *w, uint8_t b,
		   struct op *op)
{
	uint8_t b2;

	memset(op, 0, sizeof(*op));
	op->from = -1;
	switch (b % 32) {
	case 0: case 1: case 2: {
		/* file: name, policy, shared, size (1-4 huge pages; 1-2 on a
		 * 1G pool; now and then a size that is not a multiple).  The
		 * opcodes 98, 130, 162 and 194 make a b-adaptive file, whose
		 * policy bits pick a small merge delay (periods end often in
		 * a run of 64 commands), 0 (merge at once) or none (the
		 * default, 8192: only compact merges) */
		static const uint64_t slots2m[8] = { 1, 2, 3, 4, 1, 2, 0, 1 };
		static const uint64_t slots1g[8] = { 1, 1, 2, 1, 1, 2, 0, 1 };
		static const int delays[8] = { 1, 2, 3, 4, 0, 1, 2, -1 };
		uint8_t opc = b;
		uint64_t ns;
		int d;

		b = next(in);
		op->cmd = C_FILE;
		op->file = b & 3;
		op->policy = (b >> 2) & 3;
		if (opc % 32 == 2 && opc >= 96) {
			d = delays[((b >> 2) & 3) | ((opc >> 5) & 1) << 2];
			op->policy = POL_ADAPTIVE;
			op->has_delay = d >= 0;
			op->delay = d >= 0 ? (unsigned int)d : 0;
		}
		op->shared = (b >> 4) & 1;
		ns = (w->hpp == 512 ? slots2m : slots1g)[b >> 5];
		op->size = ns ? ns * w->psize : w->psize + w->psize / 2;
		return;
	}
	case 3:
		op->cmd = C_CLOSE;
		op->file = next(in) & 3;
		return;
	case 4:
		b = next(in);
		op->cmd = C_MM;
		op->mm = b & 3;
		op->from = ((b >> 2) & 7) < 4 ? (b >> 2) & 3 : -1;
		return;
	case 5: case 6:
		b = next(in);
		op->cmd = C_MMAP;
		op->mm = b & 3;
		op->file = (b >> 2) & 3;
		return;
	case 7: case 8: case 9: case 10: case 11: case 12:
		b = next(in);
		op->cmd = (b >> 6) == 0 ? C_FAULT : (b >> 6) == 1 ? C_WRITE :
			  C_READ;
		op->mm = b & 3;
		op->file = (b >> 2) & 3;
		op->w = (b >> 4) & 1;
		b2 = next(in);
		op->off = dec_page(in, w, op->file) * 4096 + dec_inpage(b2);
		op->val = (uint8_t)(b2 >> 3 | 1);
		return;
	case 13: case 14: case 15:
		b = next(in);
		op->cmd = C_PIN;
		op->pin = b & 7;
		op->mm = (b >> 3) & 3;
		op->longterm = (b >> 5) & 1;
		op->exclusive = ((b >> 6) & 3) == 3;
		op->file = next(in) & 3;
		op->off = dec_page(in, w, op->file);
		dec_range(in, w, op->file, op->off, &op->off, &op->len);
		return;
	case 16: case 17:
		op->cmd = C_UNPIN;
		op->pin = next(in) & 7;
		return;
	case 18: case 19: case 20: case 21:
		b = next(in);
		op->cmd = C_CONVERT;
		op->file = b & 3;
		op->to_shared = (b >> 2) & 1;
		op->zero = ((b >> 3) & 3) == 3;
		op->off = dec_page(in, w, op->file);
		dec_range(in, w, op->file, op->off, &op->off, &op->len);
		return;
	case 22: case 23:
		op->cmd = C_PUNCH;
		op->file = next(in) & 3;
		op->off = dec_page(in, w, op->file);
		dec_range(in, w, op->file, op->off, &op->off, &op->len);
		return;
	case 24: case 25:
		b = next(in);
		op->cmd = C_GUEST;
		op->file = b & 3;
		op->w = (b >> 2) & 1;
		op->has_len = (b >> 3) & 1;
		op->off = dec_page(in, w, op->file) * 4096;
		if (op->has_len) {
			uint64_t o;

			dec_range(in, w, op->file, op->off / 4096, &o,
				  &op->len);
			/* guest takes any length; keep it whole pages */
			op->len = (op->len + 4095) / 4096 * 4096;
			if (!op->len)
				op->len = 4096;
		} else {
			op->off += dec_inpage(b >> 4);
		}
		return;
	case 26: case 27:
		b = next(in);
		op->cmd = (b >> 7) ? C_GWRITE : C_GREAD;
		op->file = b & 3;
		op->off = dec_page(in, w, op->file) * 4096 +
			  dec_inpage(b >> 2);
		op->val = (uint8_t)(next(in) | 0x80);
		return;
	case 28: case 29:
		op->cmd = C_IOMMU;
		op->file = next(in) & 3;
		op->off = dec_page(in, w, op->file);
		dec_range(in, w, op->file, op->off, &op->off, &op->len);
		return;
	case 30:
		b = next(in);
		op->cmd = C_POISON;
		op->file = b & 3;
		op->off = dec_page(in, w, op->file) * 4096 +
			  (((b >> 2) & 15) == 15 ? 0x10 : 0);
		return;
	default:
		/* compact (opcodes 95 and up); a second pool: err EEXIST */
		if (b >= 95) {
			op->cmd = C_COMPACT;
			op->file = next(in) & 3;
			return;
		}
		op->cmd = C_POOL;
		return;
	}
}

/* ------------------------------------------------ the trace line of an op */

static void op_line(const struct world *w, const struct op *op, char *buf,
		    size_t len)
{
	const char *f = fname(op->file), *m = mname(op->mm);

	switch (op->cmd) {
	case C_POOL:
		snprintf(buf, len, "pool %s 1", w->hpp == 512 ? "2M" : "1G");
		break;
	case C_FILE:
		if (op->has_delay)
			snprintf(buf, len, "file %s 0x%" PRIx64
				 " policy=%s merge_delay=%u%s", f, op->size,
				 policy_word[op->policy], op->delay,
				 op->shared ? " shared" : "");
		else
			snprintf(buf, len, "file %s 0x%" PRIx64 " policy=%s%s",
				 f, op->size, policy_word[op->policy],
				 op->shared ? " shared" : "");
		break;
	case C_CLOSE:
		snprintf(buf, len, "close %s", f);
		break;
	case C_MM:
		if (op->from >= 0)
			snprintf(buf, len, "mm %s fork=%s", m, mname(op->from));
		else
			snprintf(buf, len, "mm %s", m);
		break;
	case C_MMAP:
		snprintf(buf, len, "mmap %s %s", m, f);
		break;
	case C_FAULT:
		snprintf(buf, len, "fault %s %s 0x%" PRIx64 "%s", m, f, op->off,
			 op->w ? " w" : "");
		break;
	case C_WRITE:
		snprintf(buf, len, "write %s %s 0x%" PRIx64 " 0x%02x", m, f,
			 op->off, op->val);
		break;
	case C_READ:
		snprintf(buf, len, "read %s %s 0x%" PRIx64, m, f, op->off);
		break;
	case C_PIN:
		snprintf(buf, len, "pin %s %s %s 0x%" PRIx64 " 0x%" PRIx64 "%s%s",
			 pname(op->pin), m, f, op->off, op->len,
			 op->longterm ? " longterm" : "",
			 op->exclusive ? " exclusive" : "");
		break;
	case C_UNPIN:
		snprintf(buf, len, "unpin %s", pname(op->pin));
		break;
	case C_CONVERT:
		snprintf(buf, len, "convert %s 0x%" PRIx64 " 0x%" PRIx64 " %s%s",
			 f, op->off, op->len,
			 op->to_shared ? "shared" : "private",
			 op->zero ? " zero" : "");
		break;
	case C_PUNCH:
		snprintf(buf, len, "punch %s 0x%" PRIx64 " 0x%" PRIx64, f,
			 op->off, op->len);
		break;
	case C_GUEST:
		if (op->has_len)
			snprintf(buf, len, "guest %s 0x%" PRIx64 " 0x%" PRIx64 "%s",
				 f, op->off, op->len, op->w ? " w" : "");
		else
			snprintf(buf, len, "guest %s 0x%" PRIx64 "%s", f,
				 op->off, op->w ? " w" : "");
		break;
	case C_GREAD:
		snprintf(buf, len, "gread %s 0x%" PRIx64, f, op->off);
		break;
	case C_GWRITE:
		snprintf(buf, len, "gwrite %s 0x%" PRIx64 " 0x%02x", f, op->off,
			 op->val);
		break;
	case C_IOMMU:
		snprintf(buf, len, "iommu %s 0x%" PRIx64 " 0x%" PRIx64, f,
			 op->off, op->len);
		break;
	case C_POISON:
		snprintf(buf, len, "poison %s 0x%" PRIx64, f, op->off);
		break;
	case C_COMPACT:
		snprintf(buf, len, "compact %s", f);
		break;
	}
}

/* ------------------------------------------------------- the reference */

static struct ref_res ref_run(struct world *w, const struct op *op)
{
	struct ref *r = w->ref;
	const char *f = fname(op->file), *m = mname(op->mm);

	switch (op->cmd) {
	case C_POOL:
		return ref_pool(r, w->psize, 1, false);
	case C_FILE:
		return ref_file(r, f, op->size, policy_ref[op->policy],
				op->shared,
				op->has_delay ? (int64_t)op->delay : -1);
	case C_CLOSE:
		return ref_close(r, f);
	case C_MM:
		return ref_mm(r, m, op->from >= 0 ? mname(op->from) : NULL);
	case C_MMAP:
		return ref_mmap(r, m, f);
	case C_FAULT:
		return ref_fault(r, m, f, op->off, op->w);
	case C_WRITE:
		return ref_write(r, m, f, op->off, op->val);
	case C_READ:
		return ref_read(r, m, f, op->off);
	case C_PIN:
		return ref_pin(r, pname(op->pin), m, f, op->off, op->len,
			       op->longterm, op->exclusive);
	case C_UNPIN:
		return ref_unpin(r, pname(op->pin));
	case C_CONVERT:
		return ref_convert(r, f, op->off, op->len, op->to_shared,
				   op->zero);
	case C_PUNCH:
		return ref_punch(r, f, op->off, op->len);
	case C_GUEST:
		return ref_guest(r, f, op->off, op->has_len ? op->len : 0,
				 op->w);
	case C_GREAD:
		return ref_gread(r, f, op->off);
	case C_GWRITE:
		return ref_gwrite(r, f, op->off, op->val);
	case C_IOMMU:
		return ref_iommu(r, f, op->off, op->len);
	case C_POISON:
		return ref_poison(r, f, op->off);
	case C_COMPACT:
		return ref_compact(r, f);
	}
	abort();
}

/* ----------------------------------------------------------- libgmem */

/* As tools/trace.c prints a library call's result. */
static void lib_str(int ret, bool has_at, uint64_t at, char *buf, size_t len)
{
	const char *name;

	switch (ret) {
	case 0:
		snprintf(buf, len, "ok");
		return;
	case GMEM_SIGBUS:
		snprintf(buf, len, "sigbus");
		return;
	case GMEM_GUEST_FAULT:
		snprintf(buf, len, "fault");
		return;
	case GMEM_GUEST_HWPOISON:
		snprintf(buf, len, "hwpoison");
		return;
	}
	if (ret > 0) {
		snprintf(buf, len, "outcome %d", ret);
		return;
	}
	name = gmem_errno_name(ret);
	if (!name || !*name)
		name = "E?";
	if (has_at && at != UINT64_MAX)
		snprintf(buf, len, "err %s at=0x%" PRIx64, name, at);
	else
		snprintf(buf, len, "err %s", name);
}

/* Whether @id is the id of a pin that world @w holds now. */
static bool id_live(const struct world *w, uint64_t id)
{
	for (int i = 0; i < NR_PINS; i++)
		if (w->pin_held[i] && w->pin_id[i] == id)
			return true;
	return false;
}

/* Whether @id was ever handed out, as far as the run remembers. */
static bool id_known(const struct run *rn, uint64_t id)
{
	for (int k = 0; k < 2; k++) {
		const struct world *w = &rn->w[k];
		unsigned int n = w->ndead < NR_DEAD ? w->ndead : NR_DEAD;

		if (id_live(w, id))
			return true;
		for (unsigned int i = 0; i < n; i++)
			if (w->dead_id[i] == id)
				return true;
	}
	return false;
}

/*
 * Runs @op on libgmem with the replay engine's name rules (TRACE.md "Order
 * of checks": names referenced, then the name defined, then the library).
 */
static void lib_run(struct run *rn, struct world *w, const struct op *op,
		    char *buf, size_t len)
{
	struct gmem_file *f = w->file[op->file];
	struct gmem_mm *m = w->mm[op->mm];
	uint64_t at = UINT64_MAX, id = 0;
	uint8_t val = 0;
	int ret;

#define ENOENT_IF(c) do { if (c) { lib_str(-ENOENT, false, 0, buf, len); return; } } while (0)
#define EEXIST_IF(c) do { if (c) { lib_str(-EEXIST, false, 0, buf, len); return; } } while (0)
	switch (op->cmd) {
	case C_POOL:
		EEXIST_IF(w->pool);
		abort();
	case C_FILE:
		EEXIST_IF(f);
		/* tools/trace.c: "merge_delay= applies to b-adaptive only:
		 * EINVAL before creating", then set after it */
		if (op->has_delay && op->policy != POL_ADAPTIVE) {
			ret = -EINVAL;
			break;
		}
		ret = gmem_file_create(w->pool, op->size,
				       policy_lib[op->policy],
				       op->shared ? GMEM_FILE_INIT_SHARED : 0,
				       &f);
		if (!ret && op->has_delay) {
			ret = gmem_file_set_merge_delay(f, op->delay);
			if (ret) {
				snprintf(rn->note, sizeof(rn->note),
					 "gmem_file_set_merge_delay() of a new "
					 "b-adaptive file gave %d", ret);
				gmem_file_close(f);
			}
		}
		if (!ret) {
			w->file[op->file] = f;
			w->fsize[op->file] = op->size;
			w->fpolicy[op->file] = op->policy;
		}
		break;
	case C_CLOSE:
		ENOENT_IF(!f);
		ret = gmem_file_close(f);
		if (!ret) {
			unsigned int k = w->nclosed++ % NR_CLOSED;

			w->closed[k] = f;
			w->closed_size[k] = w->fsize[op->file];
			w->closed_name[k] = op->file;
			w->closed_policy[k] = w->fpolicy[op->file];
			w->file[op->file] = NULL;
		}
		break;
	case C_MM:
		ENOENT_IF(op->from >= 0 && !w->mm[op->from]);
		EEXIST_IF(m);
		ret = gmem_mm_create(w->pool,
				     op->from >= 0 ? w->mm[op->from] : NULL,
				     &m);
		if (!ret)
			w->mm[op->mm] = m;
		break;
	case C_MMAP:
		ENOENT_IF(!m || !f);
		ret = gmem_mmap(m, f);
		break;
	case C_FAULT:
		ENOENT_IF(!m || !f);
		ret = gmem_fault(m, f, op->off, op->w ? GMEM_WRITE : 0);
		break;
	case C_WRITE:
		ENOENT_IF(!m || !f);
		ret = gmem_host_write(m, f, op->off, op->val);
		break;
	case C_READ:
		ENOENT_IF(!m || !f);
		ret = gmem_host_read(m, f, op->off, &val);
		if (!ret) {
			snprintf(buf, len, "0x%02x", val);
			return;
		}
		break;
	case C_PIN:
		ENOENT_IF(!m || !f);
		EEXIST_IF(w->pin_held[op->pin]);
		ret = gmem_pin(m, f, op->off, op->len,
			       (op->longterm ? GMEM_PIN_LONGTERM : 0) |
			       (op->exclusive ? GMEM_PIN_EXCLUSIVE : 0),
			       &id, NULL);
		if (!ret) {
			/* "unique in the process: never reused, and never
			 * the id of another pool's pin" (gmem.h) */
			if (id_known(rn, id))
				snprintf(rn->note, sizeof(rn->note),
					 "gmem_pin() gave id %" PRIu64
					 ", an id it gave before", id);
			w->pin_held[op->pin] = true;
			w->pin_id[op->pin] = id;
			if (id > rn->max_id)
				rn->max_id = id;
		}
		break;
	case C_UNPIN:
		ENOENT_IF(!w->pin_held[op->pin]);
		ret = gmem_unpin(w->pool, w->pin_id[op->pin]);
		if (!ret || ret == -ENOENT) {
			w->pin_held[op->pin] = false;
			w->dead_id[w->ndead++ % NR_DEAD] = w->pin_id[op->pin];
		}
		break;
	case C_CONVERT:
		ENOENT_IF(!f);
		ret = gmem_convert(f, op->off, op->len,
				   op->to_shared ? GMEM_SHARED : GMEM_PRIVATE,
				   op->zero ? GMEM_CONVERT_ZERO : 0, 0, &at);
		lib_str(ret, ret == -EAGAIN || ret == -EBUSY, at, buf, len);
		return;
	case C_PUNCH:
		ENOENT_IF(!f);
		ret = gmem_punch(f, op->off, op->len);
		break;
	case C_GUEST:
		ENOENT_IF(!f);
		ret = gmem_guest_access(f, op->off, op->has_len ? op->len : 0,
					op->w ? GMEM_WRITE : 0);
		break;
	case C_GREAD:
		ENOENT_IF(!f);
		ret = gmem_guest_read(f, op->off, &val);
		if (!ret) {
			snprintf(buf, len, "0x%02x", val);
			return;
		}
		break;
	case C_GWRITE:
		ENOENT_IF(!f);
		ret = gmem_guest_write(f, op->off, op->val);
		break;
	case C_IOMMU:
		ENOENT_IF(!f);
		ret = gmem_iommu_map(f, op->off, op->len, &at);
		lib_str(ret, ret == -EFAULT || ret == -EHWPOISON, at, buf, len);
		return;
	case C_POISON:
		ENOENT_IF(!f);
		ret = gmem_poison(f, op->off);
		break;
	case C_COMPACT:
		ENOENT_IF(!f);
		ret = gmem_file_compact(f);
		break;
	default:
		abort();
	}
#undef ENOENT_IF
#undef EEXIST_IF
	lib_str(ret, false, 0, buf, len);
}

/* --------------------------------------------------------- comparing */

static bool replay_mode;	/* report and go on instead of abort() */
static bool print_traces;	/* -t: print every trace */

static void report(struct run *rn, const char *what)
{
	FILE *out = replay_mode ? stdout : stderr;

	fprintf(out, "# gmem differential fuzz: %s\n"
		"# a reproducer: `./gmem replay FILE` stops at the expect that "
		"fails;\n# every expect is the reference model's result "
		"(tests/fuzz/ref.c);\n# `# api:` lines are C API calls with "
		"what gmem.h and DECISIONS.md say they return\n%s", what,
		rn->trace.buf);
	fflush(out);
	rn->failed = true;
	if (!replay_mode)
		abort();
}

/* Compares world @w's pool-wide (@i < 0) or file @i's statistics. */
static bool stats_equal(struct run *rn, struct world *w, int i)
{
	const char *name = i < 0 ? "-" : fname(i);
	struct ref_stats want;
	struct gmem_stats got;
	char keys[1024] = "", wstr[2048] = "", gstr[2048] = "";
	bool same = true;
	int ret;

	memset(&got, 0, sizeof(got));
	ret = ref_stats(w->ref, i < 0 ? NULL : name, &want);
	if (ret) {
		sb_printf(&rn->trace, "%sstats %s\n%sexpect err ENOENT\n",
			  w->pfx, name, w->pfx);
		report(rn, "a file the reference does not know");
		return false;
	}
	ret = gmem_stats(w->pool, i < 0 ? NULL : w->file[i], &got);
	if (ret) {
		sb_printf(&rn->trace, "%sstats %s\n# got: err %s\n", w->pfx,
			  name, gmem_errno_name(ret));
		report(rn, "gmem_stats() failed");
		return false;
	}
	for (int k = 0; k < REF_NR_KEYS; k++) {
		uint64_t v = 0;
		size_t kl = strlen(keys), wl = strlen(wstr), gl = strlen(gstr);

		gmem_stat_get(&got, ref_stat_keys[k], &v);
		if (v == want.v[k])
			continue;
		same = false;
		snprintf(keys + kl, sizeof(keys) - kl, " %s", ref_stat_keys[k]);
		snprintf(wstr + wl, sizeof(wstr) - wl, "%s%s=%" PRIu64,
			 wl ? " " : "", ref_stat_keys[k], want.v[k]);
		snprintf(gstr + gl, sizeof(gstr) - gl, "%s%s=%" PRIu64,
			 gl ? " " : "", ref_stat_keys[k], v);
	}
	if (!same) {
		sb_printf(&rn->trace, "%sstats %s%s\n%sexpect %s\n# got: %s\n",
			  w->pfx, name, keys, w->pfx, wstr, gstr);
		report(rn, "statistics differ");
	}
	return same;
}

/*
 * After every command: gmem_check() passes on each pool, and each pool's
 * statistics (pool-wide and every open file) equal its model's.
 */
static bool post_checks(struct run *rn)
{
	for (int k = 0; k < 2; k++) {
		struct world *w = &rn->w[k];
		char msg[512] = "";

		if (!w->pool)
			continue;
		if (gmem_check(w->pool, msg, sizeof(msg))) {
			msg[sizeof(msg) - 1] = '\0';
			sb_printf(&rn->trace,
				  "%scheck\n%sexpect ok\n# got: violation: %s\n",
				  w->pfx, w->pfx, msg);
			report(rn, "gmem_check() found a violation");
			return false;
		}
		if (!stats_equal(rn, w, -1))
			return false;
		for (int i = 0; i < NR_FILES; i++)
			if (w->file[i] && !stats_equal(rn, w, i))
				return false;
	}
	return true;
}

/*
 * Every statistic of both pools, pool-wide and of every open file, as
 * libgmem gives them (all keys of struct gmem_stats, meta_bytes and the
 * extra keys included): what a failed call must leave as it was.
 */
struct snap {
	int ret[2][1 + NR_FILES];
	bool has[2][1 + NR_FILES];
	struct gmem_stats s[2][1 + NR_FILES];
};

static void snap_take(struct run *rn, struct snap *sn)
{
	memset(sn, 0, sizeof(*sn));
	for (int k = 0; k < 2; k++) {
		struct world *w = &rn->w[k];

		if (!w->pool)
			continue;
		sn->has[k][0] = true;
		sn->ret[k][0] = gmem_stats(w->pool, NULL, &sn->s[k][0]);
		for (int i = 0; i < NR_FILES; i++) {
			if (!w->file[i])
				continue;
			sn->has[k][1 + i] = true;
			sn->ret[k][1 + i] = gmem_stats(w->pool, w->file[i],
						       &sn->s[k][1 + i]);
		}
	}
}

/*
 * Compares two snapshots; on a difference adds what changed to the trace
 * and reports @what.  pin_wait_ns is time; the peaks keep what a failing
 * call held for a moment; eopnotsupp counts refused calls (a long-term
 * pin under policy a), so @skip_eopnotsupp for those.
 */
static bool snap_same(struct run *rn, const struct snap *a,
		      const struct snap *b, bool skip_eopnotsupp,
		      const char *what)
{
	char diff[1024] = "";
	size_t dl = 0;

	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 1 + NR_FILES; i++) {
			const char *obj = i ? fname(i - 1) : "-";

			if (a->has[k][i] != b->has[k][i] ||
			    a->ret[k][i] != b->ret[k][i]) {
				snprintf(diff + dl, sizeof(diff) - dl,
					 " %s %s: stats %s -> %s;",
					 rn->w[k].label, obj,
					 a->has[k][i] ? gmem_errno_name(a->ret[k][i]) : "none",
					 b->has[k][i] ? gmem_errno_name(b->ret[k][i]) : "none");
				dl = strlen(diff);
				continue;
			}
			if (!a->has[k][i])
				continue;
			for (int j = 0; gmem_stat_keys[j]; j++) {
				const char *key = gmem_stat_keys[j];
				uint64_t va = 0, vb = 0;

				/* gmem.h: a peak is "the most meta_bytes and
				 * vmemmap_bytes a file held at any moment",
				 * a failing call's moment too */
				if (!strcmp(key, "pin_wait_ns") ||
				    strstr(key, "_peak_") ||
				    (skip_eopnotsupp &&
				     !strcmp(key, "eopnotsupp")))
					continue;
				gmem_stat_get(&a->s[k][i], key, &va);
				gmem_stat_get(&b->s[k][i], key, &vb);
				if (va == vb)
					continue;
				snprintf(diff + dl, sizeof(diff) - dl,
					 " %s %s %s: %" PRIu64 " -> %" PRIu64 ";",
					 rn->w[k].label, obj, key, va, vb);
				dl = strlen(diff);
			}
		}
	}
	if (!dl)
		return true;
	sb_printf(&rn->trace, "# changed:%s\n", diff);
	report(rn, what);
	return false;
}

/* The model's figures of world @w (pool-wide, then files), for a call the
 * model must not change either. */
struct refsnap {
	bool has[1 + NR_FILES];
	struct ref_stats s[1 + NR_FILES];
};

static void refsnap_take(struct world *w, struct refsnap *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->has[0] = !ref_stats(w->ref, NULL, &rs->s[0]);
	for (int i = 0; i < NR_FILES; i++)
		rs->has[1 + i] = !ref_stats(w->ref, fname(i), &rs->s[1 + i]);
}

/*
 * Whether the documents say that @op, answered @res, changed nothing:
 * every error but a conversion's EAGAIN and EBUSY ("host entries zapped
 * stay zapped"), a b-adaptive long-term pin's EAGAIN (it "changes nothing
 * but the zapped entries, as a failing conversion does") and a guest
 * range's (it keeps what it mapped before), a host access's sigbus, and a
 * guest access that found nothing to map.
 */
static bool must_keep(const struct world *w, const struct op *op,
		      const struct ref_res *res)
{
	if (res->kind == REF_SIGBUS)
		return true;
	if (res->kind == REF_ERR) {
		if (op->cmd == C_CONVERT &&
		    (res->err == EAGAIN || res->err == EBUSY))
			return false;
		if (op->cmd == C_PIN && res->err == EAGAIN)
			return false;
		return !(op->cmd == C_GUEST && op->has_len);
	}
	if (res->kind == REF_FAULT || res->kind == REF_HWPOISON) {
		if (op->cmd == C_GREAD || op->cmd == C_GWRITE)
			return true;
		return op->cmd == C_GUEST && w->file[op->file] &&
		       op->off >= w->fsize[op->file];
	}
	return false;
}

/*
 * Runs one command on world @w of both sides and compares everything;
 * false on a failure.  @edge: a command with hostile arguments, which
 * must also leave both sides as they were when the documents say it
 * changes nothing.
 */
static bool step(struct run *rn, struct world *w, const struct op *op,
		 bool edge)
{
	char line[256], want[128], got[128], msg[512];
	struct snap before, after;
	struct refsnap rbefore, rafter;
	struct ref_res res;

	op_line(w, op, line, sizeof(line));
	if (edge) {
		snap_take(rn, &before);
		refsnap_take(w, &rbefore);
	}
	res = ref_run(w, op);
	ref_res_str(&res, want, sizeof(want));
	rn->note[0] = '\0';
	lib_run(rn, w, op, got, sizeof(got));
	sb_printf(&rn->trace, "%s%s\n%sexpect %s\n", w->pfx, line, w->pfx,
		  want);
	if (strcmp(want, got)) {
		sb_printf(&rn->trace, "# got: %s\n", got);
		report(rn, "results differ");
		return false;
	}
	if (rn->note[0]) {
		snprintf(msg, sizeof(msg), "%s", rn->note);
		report(rn, msg);
		return false;
	}
	if (edge && must_keep(w, op, &res)) {
		refsnap_take(w, &rafter);
		if (memcmp(&rbefore, &rafter, sizeof(rbefore))) {
			report(rn, "the reference model changed on a call "
				   "that must change nothing (tests/fuzz/ref.c)");
			return false;
		}
		snap_take(rn, &after);
		if (!snap_same(rn, &before, &after,
			       res.kind == REF_ERR && res.err == EOPNOTSUPP,
			       "a call that must change nothing changed the "
			       "statistics"))
			return false;
	}
	return post_checks(rn);
}

/* ------------------------------------------------------------ the pools */

/*
 * Creates world @k's pool and model: world 0 from the input's first byte
 * @h (2M pages, 31 in 32, 1-8 of them, memfd backing or none (1 in 4); or
 * 1G pages, 1-2 of them, memfd backing (1 in 4) or none); world 1, the
 * second pool, from @h too: 2M pages, 1-4 of them, memfd or none (1 in 4).
 */
static bool world_create(struct run *rn, int k, uint8_t h)
{
	struct world *w = &rn->w[k];
	struct ref_res res;
	char want[64];
	int ret;

	w->pfx = k ? "# pool2: " : "";
	w->label = k ? "pool2" : "pool1";
	if (!k) {
		w->psize = (h & 31) == 31 ? GMEM_1G : GMEM_2M;
		if (w->psize == GMEM_2M) {
			w->none = ((h >> 3) & 3) == 3;
			w->count = 1 + (h >> 5);
		} else {
			w->none = ((h >> 5) & 3) != 3;
			w->count = 1 + (h >> 7);
		}
	} else {
		w->psize = GMEM_2M;
		w->none = ((h >> 2) & 3) == 3;
		w->count = 1 + (h & 3);
	}
	w->hpp = w->psize / 4096;
	w->ref = ref_new();
	res = ref_pool(w->ref, w->psize, w->count, w->none);
	ref_res_str(&res, want, sizeof(want));
	sb_printf(&rn->trace, "%spool %s %" PRIu64 " backing=%s\n%sexpect %s\n",
		  w->pfx, w->psize == GMEM_2M ? "2M" : "1G", w->count,
		  w->none ? "none" : "memfd", w->pfx, want);
	ret = gmem_pool_create(w->psize, w->count,
			       w->none ? GMEM_BACKING_NONE : GMEM_BACKING_MEMFD,
			       &w->pool);
	if (ret) {
		w->pool = NULL;
		sb_printf(&rn->trace, "# got: err %s\n", gmem_errno_name(ret));
		report(rn, "pool creation failed");
		return false;
	}
	return true;
}

/*
 * The second pool when a command needs it: created with one file f0
 * (b-lazy, all shared, one huge page), an mm m0 that maps it, a faulted
 * page and a pin p0 of it, each run on both sides as trace commands of
 * that pool.
 */
static bool world2_ensure(struct run *rn)
{
	struct world *w = &rn->w[1];
	struct op op;

	if (w->pool)
		return true;
	if (!world_create(rn, 1, 0))
		return false;
	memset(&op, 0, sizeof(op));
	op.from = -1;
	op.cmd = C_FILE;
	op.size = w->psize;
	op.policy = 3;
	op.shared = true;
	if (!step(rn, w, &op, false))
		return false;
	op.cmd = C_MM;
	if (!step(rn, w, &op, false))
		return false;
	op.cmd = C_MMAP;
	if (!step(rn, w, &op, false))
		return false;
	op.cmd = C_FAULT;
	op.off = 0x1000;
	if (!step(rn, w, &op, false))
		return false;
	op.cmd = C_PIN;
	op.len = 0x1000;
	return step(rn, w, &op, false);
}

/* ------------------------------------------------------ hostile calls */

/*
 * A hostile opcode byte (HOSTILE and up) picks one of these by its low 5
 * bits; each reads its operands from the next bytes.
 */
enum hkind {
	H_SWITCH,	/* trace commands act on pool 1 or pool 2 from now */
	H_EDGE,		/* a trace command with offsets, lengths or a file
			 * size near 2^64, wrapping, unaligned, at the end */
	H_CROSS,	/* an mm of one pool with a file of the other */
	H_FORK,		/* gmem_mm_create() forking another pool's mm; NULL */
	H_STATS,	/* gmem_stats() across pools, closed, NULL; keys */
	H_UNPIN,	/* ids of the other pool's pins, stale or no pin's */
	H_FLAGS,	/* unknown flag bits, bad policy and attribute */
	H_CLOSED,	/* every call on a closed file's handle */
	H_NULL,		/* NULL pointers where gmem.h says -EINVAL */
	H_HVA,		/* gmem_file_hva() past the end, no memory */
	H_POOL,		/* gmem_pool_create() with a bad size, count, backing */
	H_MERGE,	/* gmem_file_set_merge_delay(), gmem_file_compact():
			 * NULL, closed, not b-adaptive */
};

/* 0xff, a byte mutations write often, is two pools mixed rather than
 * the cheap pool parameters */
static const uint8_t hkinds[32] = {
	H_SWITCH, H_SWITCH, H_SWITCH,
	H_EDGE, H_EDGE, H_EDGE, H_EDGE, H_EDGE, H_EDGE, H_EDGE, H_MERGE,
	H_POOL, H_CROSS, H_CROSS, H_CROSS, H_CROSS,
	H_FORK, H_STATS, H_STATS, H_UNPIN, H_UNPIN, H_UNPIN,
	H_FLAGS, H_FLAGS, H_CLOSED, H_CLOSED, H_CLOSED,
	H_NULL, H_NULL, H_HVA, H_HVA, H_CROSS,
};

/*
 * A hostile byte offset in a file of @size bytes: the start, the last
 * page, exactly the end, a page past it, near and at 2^64, 2^63, where
 * off + size wraps to 0, unaligned ones.
 */
static uint64_t hoff(uint8_t o, uint64_t size, uint64_t psize)
{
	switch (o & 15) {
	case 0: return 0;
	case 1: return size - 4096;
	case 2: return size;
	case 3: return size + 4096;
	case 4: return UINT64_MAX - 4095;	/* the last page below 2^64 */
	case 5: return UINT64_MAX;
	case 6: return 1ULL << 63;
	case 7: return 0 - size;		/* off + size wraps to 0 */
	case 8: return 0 - psize;		/* the last huge page */
	case 9: return size - 1;
	case 10: return 0x800;
	case 11: return size - 4096 + 0x800;
	case 12: return psize - 4096;		/* end of the first huge page */
	case 13: return (1ULL << 63) + 4096;
	case 14: return UINT64_MAX - 0x7ff;
	default: return size / 2;
	}
}

/* A hostile length for a range at @off: zero, wrapping to 0, to a page,
 * to the file's size; all of 2^64; exactly to the end, a page past it. */
static uint64_t hlen(uint8_t l, uint64_t off, uint64_t size, uint64_t psize)
{
	switch (l & 15) {
	case 0: return 0;
	case 1: return 0 - off;			/* off + len == 2^64 */
	case 2: return 0 - off + 4096;		/* wraps to 4096 */
	case 3: return UINT64_MAX;
	case 4: return UINT64_MAX - 4095;
	case 5: return size - off;		/* exactly to the end */
	case 6: return size - off + 4096;	/* one page past */
	case 7: return 4096;
	case 8: return 1;
	case 9: return 4095;
	case 10: return 1ULL << 63;
	case 11: return size;
	case 12: return 0 - off - 4096;		/* ends a page below 2^64 */
	case 13: return 0x2800;
	case 14: return 0 - off + size;		/* wraps to size */
	default: return psize;
	}
}

static bool range_valid(uint64_t off, uint64_t len, uint64_t size)
{
	return !(off % 4096) && !(len % 4096) && len && off < size &&
	       len <= size - off;
}

/* An open file (mm) of @w, the @i-th or the next one defined; -1: none. */
static int pick_file(const struct world *w, unsigned int i)
{
	for (unsigned int j = 0; j < NR_FILES; j++)
		if (w->file[(i + j) % NR_FILES])
			return (int)((i + j) % NR_FILES);
	return -1;
}

static int pick_mm(const struct world *w, unsigned int i)
{
	for (unsigned int j = 0; j < NR_MMS; j++)
		if (w->mm[(i + j) % NR_MMS])
			return (int)((i + j) % NR_MMS);
	return -1;
}

static int pick_closed(const struct world *w, unsigned int i)
{
	unsigned int n = w->nclosed < NR_CLOSED ? w->nclosed : NR_CLOSED;

	return n ? (int)(i % n) : -1;
}

static int pick_pin(const struct world *w, unsigned int i)
{
	for (unsigned int j = 0; j < NR_PINS; j++)
		if (w->pin_held[(i + j) % NR_PINS])
			return (int)((i + j) % NR_PINS);
	return -1;
}

/* A call's result as C names it: 0, GMEM_SIGBUS, -EINVAL. */
static const char *rname(int r, char *buf, size_t len)
{
	switch (r) {
	case 0:
		return "0";
	case GMEM_SIGBUS:
		return "GMEM_SIGBUS";
	case GMEM_GUEST_FAULT:
		return "GMEM_GUEST_FAULT";
	case GMEM_GUEST_HWPOISON:
		return "GMEM_GUEST_HWPOISON";
	}
	if (r < 0)
		snprintf(buf, len, "-%s", gmem_errno_name(r));
	else
		snprintf(buf, len, "%d", r);
	return buf;
}

/*
 * Ends a hostile C API call: it returned @got, the documents say @want1
 * (or @want2, where they do not order two errors that both apply), for
 * the reason @why.  A call that fails must have changed nothing of either
 * pool (@before), and the usual checks follow.
 */
static bool __attribute__((format(printf, 7, 8)))
api_end(struct run *rn, const struct snap *before, int got, int want1,
	int want2, const char *why, const char *fmt, ...)
{
	char call[256], b1[32], b2[32], b3[32];
	struct snap after;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call, sizeof(call), fmt, ap);
	va_end(ap);
	if (want2 == want1)
		sb_printf(&rn->trace, "# api: %s = %s (%s)\n", call,
			  rname(want1, b1, sizeof(b1)), why);
	else
		sb_printf(&rn->trace, "# api: %s = %s or %s (%s)\n", call,
			  rname(want1, b1, sizeof(b1)),
			  rname(want2, b2, sizeof(b2)), why);
	if (got != want1 && got != want2) {
		sb_printf(&rn->trace, "# got: %s\n",
			  rname(got, b3, sizeof(b3)));
		report(rn, "a C API call returned what the documents do not "
			   "say");
		return false;
	}
	snap_take(rn, &after);
	if (!snap_same(rn, before, &after, false,
		       "a C API call that failed changed the statistics"))
		return false;
	return post_checks(rn);
}

/* "pool1.f0", "pool2.m1", "pool1.closed-f2" */
static const char *oname(char *buf, size_t len, const struct world *w,
			 const char *name, bool closed)
{
	snprintf(buf, len, "%s.%s%s", w->label, closed ? "closed-" : "",
		 name);
	return buf;
}

#define MIXED "DECISIONS.md: objects of two pools cannot be mixed"
#define MIXED_CLOSED MIXED ", and the file is closed (-EBADF): both apply"

static bool h_edge(struct run *rn, struct input *in)
{
	static const enum cmd ecmd[12] = {
		C_FAULT, C_WRITE, C_READ, C_PIN, C_CONVERT, C_PUNCH, C_GUEST,
		C_GREAD, C_GWRITE, C_IOMMU, C_POISON, C_FILE,
	};
	struct world *w = &rn->w[rn->cur];
	uint8_t c = next(in), n = next(in), o = next(in), l = next(in);
	struct op op;
	uint64_t size;

	memset(&op, 0, sizeof(op));
	op.from = -1;
	op.cmd = ecmd[c % 12];
	op.file = n & 3;
	op.mm = (n >> 2) & 3;
	op.pin = (n >> 4) & 7;
	size = fsize_of(w, op.file);
	op.off = hoff(o, size, w->psize);
	op.len = hlen(l, op.off, size, w->psize);
	op.w = (c >> 4) & 1;
	op.longterm = (c >> 5) & 1;
	op.exclusive = (c >> 6) & 1;
	op.to_shared = (c >> 5) & 1;
	op.zero = (c >> 6) & 1;
	op.has_len = !(c >> 7);
	op.val = (uint8_t)(n | 1);
	if (op.cmd == C_FILE) {
		/* sizes that are no multiple, 0, more than the pool, or
		 * near 2^64; policy 4k reserves nothing, so a huge size of
		 * it would be a real (and, here, too large) file */
		const uint64_t sizes[8] = {
			0, w->psize / 2, w->psize + 4096, 0 - w->psize,
			1ULL << 63, (w->count + 1) * w->psize,
			UINT64_MAX - 4095, w->count * w->psize,
		};

		op.size = sizes[o & 7];
		op.policy = (c >> 4) & 3;
		op.shared = (c >> 6) & 1;
		if (op.policy == 0 && op.size > (w->count + 1) * w->psize)
			op.policy = 1;
	}
	return step(rn, w, &op, true);
}

static bool h_cross(struct run *rn, struct input *in)
{
	uint8_t x = next(in), n = next(in), o = next(in);
	int a = x & 1, mi, fi, ci;
	struct world *wa, *wb;
	struct gmem_file *fh;
	char mn[32], fnm[32];
	struct snap before;
	uint64_t size, off, len, id = 0;
	bool closed;
	void *addr = NULL;
	uint8_t val = 0;
	int got;

	if (!world2_ensure(rn))
		return false;
	wa = &rn->w[a];
	wb = &rn->w[1 - a];
	mi = pick_mm(wa, n & 3);
	if (mi < 0)
		return true;
	closed = ((n >> 4) & 1) && wb->nclosed;
	if (closed) {
		ci = pick_closed(wb, (n >> 2) & 3);
		fh = wb->closed[ci];
		size = wb->closed_size[ci];
		oname(fnm, sizeof(fnm), wb, fname(wb->closed_name[ci]), true);
	} else {
		fi = pick_file(wb, (n >> 2) & 3);
		if (fi < 0)
			return true;
		fh = wb->file[fi];
		size = wb->fsize[fi];
		oname(fnm, sizeof(fnm), wb, fname(fi), false);
	}
	oname(mn, sizeof(mn), wa, mname(mi), false);
	off = hoff(o, size, wb->psize);
	snap_take(rn, &before);
#define CROSS(call, ...) api_end(rn, &before, call, -EINVAL,		\
				 closed ? -EBADF : -EINVAL,		\
				 closed ? MIXED_CLOSED : MIXED, __VA_ARGS__)
	switch ((x >> 1) % 6) {
	case 0:
		return CROSS(gmem_mmap(wa->mm[mi], fh), "gmem_mmap(%s, %s)",
			     mn, fnm);
	case 1:
		return CROSS(gmem_fault(wa->mm[mi], fh, off,
					(x >> 5) & 1 ? GMEM_WRITE : 0),
			     "gmem_fault(%s, %s, 0x%" PRIx64 ", %u)", mn, fnm,
			     off, (x >> 5) & 1);
	case 2:
		return CROSS(gmem_host_read(wa->mm[mi], fh, off, &val),
			     "gmem_host_read(%s, %s, 0x%" PRIx64 ", &val)",
			     mn, fnm, off);
	case 3:
		return CROSS(gmem_host_write(wa->mm[mi], fh, off, 0x5a),
			     "gmem_host_write(%s, %s, 0x%" PRIx64 ", 0x5a)",
			     mn, fnm, off);
	case 4:
		len = hlen(o >> 4, off, size, wb->psize);
		got = gmem_pin(wa->mm[mi], fh, off, len, (x >> 5) & 3, &id,
			       NULL);
		return CROSS(got, "gmem_pin(%s, %s, 0x%" PRIx64 ", 0x%" PRIx64
			     ", %u, &id, NULL)", mn, fnm, off, len,
			     (x >> 5) & 3);
	default:
		got = gmem_mm_view(wa->mm[mi], fh, &addr);
		return CROSS(got, "gmem_mm_view(%s, %s, &addr)", mn, fnm);
	}
#undef CROSS
}

static bool h_fork(struct run *rn, struct input *in)
{
	uint8_t x = next(in);
	int a = x & 1, mi;
	struct world *wa, *wb;
	struct gmem_mm *out = NULL;
	struct snap before;
	char mn[32];
	int got;

	if (!world2_ensure(rn))
		return false;
	wa = &rn->w[a];
	wb = &rn->w[1 - a];
	mi = pick_mm(wa, (x >> 1) & 3);
	snap_take(rn, &before);
	switch ((x >> 3) & 3) {
	case 0:
	case 1:
		if (mi < 0)
			return true;
		oname(mn, sizeof(mn), wa, mname(mi), false);
		got = gmem_mm_create(wb->pool, wa->mm[mi], &out);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: @fork_from of another pool",
			       "gmem_mm_create(%s, %s, &out)", wb->label, mn);
	case 2:
		got = gmem_mm_create(NULL, mi >= 0 ? wa->mm[mi] : NULL, &out);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: a NULL argument",
			       "gmem_mm_create(NULL, %s, &out)",
			       mi >= 0 ? oname(mn, sizeof(mn), wa, mname(mi),
					       false) : "NULL");
	default:
		got = gmem_mm_create(wa->pool, NULL, NULL);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: a NULL argument",
			       "gmem_mm_create(%s, NULL, NULL)", wa->label);
	}
}

static bool h_stats(struct run *rn, struct input *in)
{
	static const char *const bad_keys[6] = {
		"", "pool", "no_such_key", "pool_free ", "POOL_FREE",
		"zaps\n",
	};
	static const char *const bad_shown[6] = {
		"", "pool", "no_such_key", "pool_free ", "POOL_FREE",
		"zaps\\n",
	};
	uint8_t x = next(in);
	int a = (x >> 3) & 1, fi, ci;
	struct world *wa, *wb;
	struct gmem_stats s;
	struct snap before;
	char fnm[32], msg[64];
	uint64_t v = 0;
	int got;

	if (!world2_ensure(rn))
		return false;
	wa = &rn->w[a];
	wb = &rn->w[1 - a];
	memset(&s, 0, sizeof(s));
	snap_take(rn, &before);
	switch (x & 7) {
	case 0:
	case 1:
		fi = pick_file(wb, x >> 4);
		if (fi < 0)
			return true;
		got = gmem_stats(wa->pool, wb->file[fi], &s);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: @file of another pool",
			       "gmem_stats(%s, %s, &s)", wa->label,
			       oname(fnm, sizeof(fnm), wb, fname(fi), false));
	case 2:
		ci = pick_closed(wb, x >> 4);
		if (ci < 0)
			return true;
		got = gmem_stats(wa->pool, wb->closed[ci], &s);
		return api_end(rn, &before, got, -EINVAL, -EBADF,
			       "gmem.h: @file of another pool, and closed: "
			       "both apply",
			       "gmem_stats(%s, %s, &s)", wa->label,
			       oname(fnm, sizeof(fnm), wb,
				     fname(wb->closed_name[ci]), true));
	case 3:
		ci = pick_closed(wa, x >> 4);
		if (ci < 0)
			return true;
		got = gmem_stats(wa->pool, wa->closed[ci], &s);
		return api_end(rn, &before, got, -EBADF, -EBADF,
			       "gmem.h: a closed file's handle gives -EBADF",
			       "gmem_stats(%s, %s, &s)", wa->label,
			       oname(fnm, sizeof(fnm), wa,
				     fname(wa->closed_name[ci]), true));
	case 4:
		got = gmem_stats(NULL, NULL, &s);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: a NULL argument",
			       "gmem_stats(NULL, NULL, &s)");
	case 5:
		fi = (x >> 4) & 1 ? pick_file(wa, x >> 5) : -1;
		got = gmem_stats(wa->pool, fi >= 0 ? wa->file[fi] : NULL,
				 NULL);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: a NULL argument",
			       "gmem_stats(%s, %s, NULL)", wa->label,
			       fi >= 0 ? oname(fnm, sizeof(fnm), wa, fname(fi),
					       false) : "NULL");
	case 6:
		got = gmem_stat_get(&s, bad_keys[(x >> 4) % 6], &v);
		return api_end(rn, &before, got, -ENOENT, -ENOENT,
			       "gmem.h: -ENOENT for an unknown key",
			       "gmem_stat_get(&s, \"%s\", &v)",
			       bad_shown[(x >> 4) % 6]);
	default:
		got = gmem_check(NULL, msg, sizeof(msg));
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: @pool NULL",
			       "gmem_check(NULL, buf, len)");
	}
}

static bool h_unpin(struct run *rn, struct input *in)
{
	uint8_t x = next(in), y = next(in);
	int k = x & 1, i;
	struct world *w, *o;
	struct snap before;
	const char *what;
	uint64_t id;
	int got;

	if (k && !world2_ensure(rn))
		return false;
	w = &rn->w[k];
	o = &rn->w[1 - k];
	switch ((x >> 1) & 7) {
	case 0:
		i = pick_pin(o, y);
		if (i < 0)
			return true;
		id = o->pin_id[i];
		what = "the id of a pin of the other pool";
		break;
	case 1: {
		struct world *d = y & 1 ? o : w;
		unsigned int n = d->ndead < NR_DEAD ? d->ndead : NR_DEAD;

		if (!n)
			return true;
		id = d->dead_id[(y >> 1) % n];
		what = "an id unpinned before";
		break;
	}
	case 2:
		id = 0;
		what = "id 0";
		break;
	case 3:
		id = UINT64_MAX;
		what = "id 2^64-1";
		break;
	case 4:
		id = rn->max_id + 1 + y;
		what = "an id not given yet";
		break;
	case 5:
		id = 1ULL << 63 | y;
		what = "an id near 2^63";
		break;
	case 6:
		i = pick_pin(w, y);
		if (i < 0)
			return true;
		id = w->pin_id[i] + 1 + (y >> 3);
		what = "a held id plus a little";
		break;
	default:
		i = pick_pin(o, y);
		if (i < 0)
			return true;
		id = o->pin_id[i] ^ 1;
		what = "an id next to one of the other pool";
		break;
	}
	snap_take(rn, &before);
	if ((x >> 4) & 1) {
		got = gmem_unpin(NULL, id);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: @pool NULL",
			       "gmem_unpin(NULL, %" PRIu64 ") /* %s */", id,
			       what);
	}
	if (id_live(w, id))
		return true;	/* that pool's own pin: a real unpin */
	got = gmem_unpin(w->pool, id);
	return api_end(rn, &before, got, -ENOENT, -ENOENT,
		       "gmem.h: no pin with @id in @pool now, also for an id "
		       "of another pool's pin",
		       "gmem_unpin(%s, %" PRIu64 ") /* %s */", w->label, id,
		       what);
}

static bool h_flags(struct run *rn, struct input *in)
{
	static const unsigned int bad[8] = {
		1u << 1, 1u << 2, 1u << 3, 1u << 7, 1u << 16, 1u << 31, ~0u,
		0x80000002u,
	};
	static const unsigned int bad_attr[4] = { 2, 3, 255, 0x7fffffff };
	static const unsigned int bad_policy[4] = { 6, 7, 255, 0x7fffffff };
	uint8_t x = next(in), y = next(in);
	struct world *w = &rn->w[rn->cur];
	int fi = pick_file(w, (y >> 2) & 3), mi = pick_mm(w, (y >> 4) & 3);
	struct gmem_file *fout = NULL;
	struct snap before;
	char fnm[32], mn[32];
	unsigned int known, flags, e;
	uint64_t id = 0, at = 0;
	int fn = x % 7, got;

	static const unsigned int known_of[7] = {
		GMEM_WRITE, GMEM_PIN_LONGTERM | GMEM_PIN_EXCLUSIVE,
		GMEM_CONVERT_ZERO, 0, GMEM_WRITE, GMEM_FILE_INIT_SHARED, 0,
	};

	known = known_of[fn];
	flags = (bad[(x >> 3) & 7] & ~known) | (y & known);
	if (!(flags & ~known))
		flags |= 1u << 31;
	if (fi >= 0)
		oname(fnm, sizeof(fnm), w, fname(fi), false);
	if (mi >= 0)
		oname(mn, sizeof(mn), w, mname(mi), false);
	snap_take(rn, &before);
	switch (fn) {
	case 0:
		if (fi < 0 || mi < 0)
			return true;
		got = gmem_fault(w->mm[mi], w->file[fi], 0, flags);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: -EINVAL (flags)",
			       "gmem_fault(%s, %s, 0, 0x%x)", mn, fnm, flags);
	case 1:
		if (fi < 0 || mi < 0)
			return true;
		got = gmem_pin(w->mm[mi], w->file[fi], 0, 4096, flags, &id,
			       NULL);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: -EINVAL (flags)",
			       "gmem_pin(%s, %s, 0, 0x1000, 0x%x, &id, NULL)",
			       mn, fnm, flags);
	case 2:
		if (fi < 0)
			return true;
		got = gmem_convert(w->file[fi], 0, 4096, (y >> 6) & 1 ?
				   GMEM_SHARED : GMEM_PRIVATE, flags, 0, &at);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: flags other than GMEM_CONVERT_ZERO",
			       "gmem_convert(%s, 0, 0x1000, %u, 0x%x, 0, &at)",
			       fnm, (y >> 6) & 1, flags);
	case 3:
		if (fi < 0)
			return true;
		e = bad_attr[(x >> 3) & 3];
		got = gmem_convert(w->file[fi], 0, 4096, (enum gmem_attr)e, 0,
				   0, &at);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: @to neither GMEM_PRIVATE nor "
			       "GMEM_SHARED",
			       "gmem_convert(%s, 0, 0x1000, %u, 0, 0, &at)",
			       fnm, e);
	case 4:
		if (fi < 0)
			return true;
		got = gmem_guest_access(w->file[fi], 0, 4096, flags);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: -EINVAL (flags)",
			       "gmem_guest_access(%s, 0, 0x1000, 0x%x)", fnm,
			       flags);
	case 5:
		got = gmem_file_create(w->pool, w->psize, GMEM_POLICY_B_LAZY,
				       flags, &fout);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: -EINVAL (size, policy or flags)",
			       "gmem_file_create(%s, 0x%" PRIx64
			       ", GMEM_POLICY_B_LAZY, 0x%x, &out)", w->label,
			       w->psize, flags);
	default:
		e = bad_policy[(x >> 3) & 3];
		got = gmem_file_create(w->pool, w->psize, (enum gmem_policy)e,
				       (y & 1) ? GMEM_FILE_INIT_SHARED : 0,
				       &fout);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: -EINVAL (size, policy or flags)",
			       "gmem_file_create(%s, 0x%" PRIx64 ", %u, %u, "
			       "&out)", w->label, w->psize, e, y & 1);
	}
}

static bool h_closed(struct run *rn, struct input *in)
{
	uint8_t x = next(in), o = next(in);
	struct world *w = &rn->w[rn->cur];
	int ci = pick_closed(w, x & 3), mi = pick_mm(w, o >> 5);
	struct gmem_file *h;
	struct gmem_stats s;
	struct snap before;
	char hn[32], mn[32];
	uint64_t size, off, len, at = 0, id = 0, hlen_out = 0;
	void *addr = NULL;
	uint8_t val = 0;
	bool valid;
	int alt;

	if (ci < 0)
		return true;
	h = w->closed[ci];
	size = w->closed_size[ci];
	oname(hn, sizeof(hn), w, fname(w->closed_name[ci]), true);
	if (mi >= 0)
		oname(mn, sizeof(mn), w, mname(mi), false);
	if (o & 0x80) {
		off = hoff(o, size, w->psize);
		len = hlen((uint8_t)(o >> 3), off, size, w->psize);
	} else {
		off = (o & 15) * 4096 % size;
		len = 4096;
	}
	valid = range_valid(off, len, size);
	/* a range check and the closed handle both apply: not ordered */
	alt = valid ? -EBADF : -EINVAL;
	snap_take(rn, &before);
#define CLOSED(call, want2, ...)					\
	api_end(rn, &before, call, -EBADF, want2, (want2) == -EBADF ?	\
		"gmem.h: a closed file's handle gives -EBADF" :		\
		"gmem.h: a closed file's handle gives -EBADF; the other "\
		"error applies too, and the documents do not order them",\
		__VA_ARGS__)
	switch ((x >> 2) % 15) {
	case 0:
		return CLOSED(gmem_file_close(h), -EBADF,
			      "gmem_file_close(%s)", hn);
	case 1:
		return CLOSED(gmem_convert(h, off, len, (o >> 6) & 1 ?
					   GMEM_SHARED : GMEM_PRIVATE, 0, 0,
					   &at), alt,
			      "gmem_convert(%s, 0x%" PRIx64 ", 0x%" PRIx64
			      ", %u, 0, 0, &at)", hn, off, len, (o >> 6) & 1);
	case 2:
		return CLOSED(gmem_punch(h, off, len), alt,
			      "gmem_punch(%s, 0x%" PRIx64 ", 0x%" PRIx64 ")",
			      hn, off, len);
	case 3:
		return CLOSED(gmem_guest_access(h, off, len, 0), -EBADF,
			      "gmem_guest_access(%s, 0x%" PRIx64 ", 0x%" PRIx64
			      ", 0)", hn, off, len);
	case 4:
		/* -ENXIO (no memory) and -EBADF: not ordered for guest
		 * accesses */
		return CLOSED(gmem_guest_read(h, off, &val),
			      w->none ? -ENXIO : -EBADF,
			      "gmem_guest_read(%s, 0x%" PRIx64 ", &val)", hn,
			      off);
	case 5:
		return CLOSED(gmem_guest_write(h, off, 0x5a),
			      w->none ? -ENXIO : -EBADF,
			      "gmem_guest_write(%s, 0x%" PRIx64 ", 0x5a)", hn,
			      off);
	case 6:
		return CLOSED(gmem_iommu_map(h, off, len, &at), alt,
			      "gmem_iommu_map(%s, 0x%" PRIx64 ", 0x%" PRIx64
			      ", &at)", hn, off, len);
	case 7:
		return CLOSED(gmem_poison(h, off),
			      range_valid(off, 4096, size) ? -EBADF : -EINVAL,
			      "gmem_poison(%s, 0x%" PRIx64 ")", hn, off);
	case 8:
		return CLOSED(gmem_stats(w->pool, h, &s), -EBADF,
			      "gmem_stats(%s, %s, &s)", w->label, hn);
	case 9:
		return CLOSED(gmem_file_hva(h, off, &addr, &hlen_out),
			      off >= size ? -EINVAL : w->none ? -ENXIO : -EBADF,
			      "gmem_file_hva(%s, 0x%" PRIx64 ", &addr, &len)",
			      hn, off);
	case 10:
		if (mi < 0)
			return true;
		return CLOSED(gmem_mmap(w->mm[mi], h), -EBADF,
			      "gmem_mmap(%s, %s)", mn, hn);
	case 11:
		if (mi < 0)
			return true;
		return CLOSED(gmem_fault(w->mm[mi], h, off, 0), -EBADF,
			      "gmem_fault(%s, %s, 0x%" PRIx64 ", 0)", mn, hn,
			      off);
	case 12:
		if (mi < 0)
			return true;
		return CLOSED(gmem_host_read(w->mm[mi], h, off, &val), -EBADF,
			      "gmem_host_read(%s, %s, 0x%" PRIx64 ", &val)",
			      mn, hn, off);
	case 13:
		if (mi < 0)
			return true;
		return CLOSED(gmem_host_write(w->mm[mi], h, off, 0x5a), -EBADF,
			      "gmem_host_write(%s, %s, 0x%" PRIx64 ", 0x5a)",
			      mn, hn, off);
	default:
		if (mi < 0)
			return true;
		/* a pin past the end is a host access (-EFAULT), after
		 * -EBADF; alignment and length are the caller's (-EINVAL) */
		return CLOSED(gmem_pin(w->mm[mi], h, off, len, 0, &id, NULL),
			      !(off % 4096) && !(len % 4096) && len ? -EBADF :
			      -EINVAL,
			      "gmem_pin(%s, %s, 0x%" PRIx64 ", 0x%" PRIx64
			      ", 0, &id, NULL)", mn, hn, off, len);
	}
#undef CLOSED
}

static bool h_null(struct run *rn, struct input *in)
{
	uint8_t x = next(in);
	struct world *w = &rn->w[rn->cur];
	int fi = pick_file(w, (x >> 4) & 3), mi = pick_mm(w, x >> 6);
	struct gmem_mm *mout = NULL;
	struct snap before;
	char fnm[32] = "", mn[32] = "", buf[64];
	uint64_t hl = 0;
	void *addr = NULL;
	int got;

	if (fi >= 0)
		oname(fnm, sizeof(fnm), w, fname(fi), false);
	if (mi >= 0)
		oname(mn, sizeof(mn), w, mname(mi), false);
	snap_take(rn, &before);
#define NULLARG(call, ...) api_end(rn, &before, call, -EINVAL, -EINVAL,	\
			       "gmem.h: a NULL argument", __VA_ARGS__)
	switch (x % 11) {
	case 0:
		if (fi < 0)
			return true;
		return NULLARG(gmem_mmap(NULL, w->file[fi]), "gmem_mmap(NULL, %s)",
			   fnm);
	case 1:
		if (mi < 0)
			return true;
		return NULLARG(gmem_mmap(w->mm[mi], NULL), "gmem_mmap(%s, NULL)",
			   mn);
	case 2:
		if (fi < 0)
			return true;
		return NULLARG(gmem_mm_view(NULL, w->file[fi], &addr),
			   "gmem_mm_view(NULL, %s, &addr)", fnm);
	case 3:
		if (mi < 0)
			return true;
		return NULLARG(gmem_mm_view(w->mm[mi], NULL, &addr),
			   "gmem_mm_view(%s, NULL, &addr)", mn);
	case 4:
		if (fi < 0 || mi < 0)
			return true;
		return NULLARG(gmem_mm_view(w->mm[mi], w->file[fi], NULL),
			   "gmem_mm_view(%s, %s, NULL)", mn, fnm);
	case 5:
		return NULLARG(gmem_unpin(NULL, rn->max_id), "gmem_unpin(NULL, %"
			   PRIu64 ")", rn->max_id);
	case 6:
		got = gmem_check(NULL, buf, sizeof(buf));
		return NULLARG(got, "gmem_check(NULL, buf, %zu)", sizeof(buf));
	case 7:
		if (fi < 0)
			return true;
		return NULLARG(gmem_file_hva(w->file[fi], 0, NULL, &hl),
			   "gmem_file_hva(%s, 0, NULL, &len)", fnm);
	case 8:
		if (fi < 0)
			return true;
		return NULLARG(gmem_file_hva(w->file[fi], 0, &addr, NULL),
			   "gmem_file_hva(%s, 0, &addr, NULL)", fnm);
	case 9:
		return NULLARG(gmem_mm_create(NULL, NULL, &mout),
			   "gmem_mm_create(NULL, NULL, &out)");
	default:
		return NULLARG(gmem_mm_create(w->pool, mi >= 0 ? w->mm[mi] : NULL,
					  NULL),
			   "gmem_mm_create(%s, %s, NULL)", w->label,
			   mi >= 0 ? mn : "NULL");
	}
#undef NULLARG
}

static bool h_hva(struct run *rn, struct input *in)
{
	uint8_t x = next(in), o = next(in);
	struct world *w = &rn->w[rn->cur];
	int fi = pick_file(w, x & 3);
	struct snap before;
	uint64_t size, off, hl = 0;
	void *addr = NULL;
	char fnm[32];
	int got;

	if (fi < 0)
		return true;
	size = w->fsize[fi];
	off = hoff(o, size, w->psize);
	/* inside the file, with memory, it allocates a hole: not hostile */
	if (off < size && !w->none)
		off += size;
	oname(fnm, sizeof(fnm), w, fname(fi), false);
	snap_take(rn, &before);
	got = gmem_file_hva(w->file[fi], off, &addr, &hl);
	if (off >= size)
		return api_end(rn, &before, got, -EINVAL,
			       w->none ? -ENXIO : -EINVAL,
			       w->none ? "gmem.h: @off past the end, and a "
					 "pool without memory: both apply" :
					 "gmem.h: @off past the end",
			       "gmem_file_hva(%s, 0x%" PRIx64 ", &addr, &len)",
			       fnm, off);
	return api_end(rn, &before, got, -ENXIO, -ENXIO,
		       "gmem.h: a pool without memory",
		       "gmem_file_hva(%s, 0x%" PRIx64 ", &addr, &len)", fnm,
		       off);
}

static bool h_pool(struct run *rn, struct input *in)
{
	uint8_t x = next(in);
	enum gmem_backing backing = (x >> 6) & 1 ? GMEM_BACKING_NONE :
						   GMEM_BACKING_MEMFD;
	uint64_t psize = GMEM_2M, count = 1 + ((x >> 3) & 3);
	struct gmem_pool *p = NULL;
	struct snap before;
	const char *why = "gmem.h: -EINVAL for a bad size";
	int want2 = -EINVAL, got;
	bool ok;

	switch (x & 7) {
	case 0: psize = 0; break;
	case 1: psize = 4096; break;
	case 2: psize = GMEM_2M + 4096; break;
	case 3: psize = 2 * GMEM_1G; break;
	case 4: psize = UINT64_MAX; break;
	case 5:
		backing = (enum gmem_backing)(4 + (x >> 3));
		why = "gmem.h: -EINVAL for a bad backing";
		break;
	case 6:
		/* count * page size wraps past 2^64 */
		count = UINT64_MAX / GMEM_2M + 1 + (x >> 3);
		why = "count * page_size wraps: the memory cannot be had";
		want2 = -ENOMEM;
		break;
	default:
		psize = GMEM_1G;
		count = (x >> 5) & 1 ? UINT64_MAX : 1ULL << 34;
		why = "count * page_size wraps: the memory cannot be had";
		want2 = -ENOMEM;
		break;
	}
	snap_take(rn, &before);
	got = gmem_pool_create(psize, count, backing, &p);
	if (!got && p)
		gmem_pool_destroy(p);
	ok = api_end(rn, &before, got, -EINVAL, want2, why,
		     "gmem_pool_create(0x%" PRIx64 ", 0x%" PRIx64 ", %u, &out)",
		     psize, count, (unsigned int)backing);
	return ok;
}

/*
 * The merge calls of b-adaptive where the trace language cannot reach:
 * gmem.h says gmem_file_set_merge_delay() is "-EINVAL (NULL, or not a
 * b-adaptive file); -EBADF" and gmem_file_compact() "-EINVAL (NULL);
 * -EBADF".  (Both on an open b-adaptive file change its state: the
 * trace's `merge_delay=` and `compact` do those.)
 */
static bool h_merge(struct run *rn, struct input *in)
{
	uint8_t x = next(in);
	struct world *w = &rn->w[rn->cur];
	unsigned int delay = x >> 5;
	struct snap before;
	char fnm[32];
	int i, got, want;

	snap_take(rn, &before);
	switch (x % 5) {
	case 0:
		return api_end(rn, &before, gmem_file_compact(NULL), -EINVAL,
			       -EINVAL, "gmem.h: -EINVAL (NULL)",
			       "gmem_file_compact(NULL)");
	case 1:
		got = gmem_file_set_merge_delay(NULL, delay);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: -EINVAL (NULL)",
			       "gmem_file_set_merge_delay(NULL, %u)", delay);
	case 2:
		i = pick_closed(w, x >> 3);
		if (i < 0)
			return true;
		oname(fnm, sizeof(fnm), w, fname(w->closed_name[i]), true);
		return api_end(rn, &before, gmem_file_compact(w->closed[i]),
			       -EBADF, -EBADF,
			       "gmem.h: a closed file's handle gives -EBADF",
			       "gmem_file_compact(%s)", fnm);
	case 3:
		i = pick_closed(w, x >> 3);
		if (i < 0)
			return true;
		oname(fnm, sizeof(fnm), w, fname(w->closed_name[i]), true);
		got = gmem_file_set_merge_delay(w->closed[i], delay);
		want = w->closed_policy[i] == POL_ADAPTIVE ? -EBADF : -EINVAL;
		return api_end(rn, &before, got, -EBADF, want,
			       want == -EBADF ?
			       "gmem.h: a closed file's handle gives -EBADF" :
			       "gmem.h: closed (-EBADF) and not b-adaptive "
			       "(-EINVAL): both apply",
			       "gmem_file_set_merge_delay(%s, %u)", fnm, delay);
	default:
		i = pick_file(w, x >> 3);
		if (i < 0 || w->fpolicy[i] == POL_ADAPTIVE)
			return true;
		oname(fnm, sizeof(fnm), w, fname(i), false);
		got = gmem_file_set_merge_delay(w->file[i], delay);
		return api_end(rn, &before, got, -EINVAL, -EINVAL,
			       "gmem.h: -EINVAL (not a b-adaptive file)",
			       "gmem_file_set_merge_delay(%s, %u)", fnm, delay);
	}
}

/* Runs the hostile command of kind @k; false on a failure. */
static bool hostile(struct run *rn, struct input *in, unsigned int k)
{
	switch (hkinds[k & 31]) {
	case H_SWITCH: {
		uint8_t x = next(in);
		int to = x & 1;

		if (to && !rn->w[1].pool && !world_create(rn, 1, x >> 1))
			return false;
		rn->cur = to;
		sb_printf(&rn->trace, "# trace commands act on %s now\n",
			  rn->w[to].label);
		return true;
	}
	case H_EDGE:
		return h_edge(rn, in);
	case H_CROSS:
		return h_cross(rn, in);
	case H_FORK:
		return h_fork(rn, in);
	case H_STATS:
		return h_stats(rn, in);
	case H_UNPIN:
		return h_unpin(rn, in);
	case H_FLAGS:
		return h_flags(rn, in);
	case H_CLOSED:
		return h_closed(rn, in);
	case H_NULL:
		return h_null(rn, in);
	case H_HVA:
		return h_hva(rn, in);
	case H_MERGE:
		return h_merge(rn, in);
	default:
		return h_pool(rn, in);
	}
}

/* --------------------------------------------------------- one input */

/*
 * One input.  Its first byte picks the first pool (world_create()).  A
 * 1G input runs at most MAX_OPS_1G commands: each costs scans of 262144
 * pages on both sides (and with memory, zeroing a b-eager 1G page costs
 * libgmem 262144 fallocate() calls).
 */
static bool run_input(const uint8_t *data, size_t size)
{
	struct input in = { data, size, 0 };
	struct run rn;
	struct op op;
	bool ok = true;
	int nops = 0, max;

	memset(&rn, 0, sizeof(rn));
	if (!world_create(&rn, 0, next(&in))) {
		ref_free(rn.w[0].ref);
		free(rn.trace.buf);
		return false;
	}
	max = rn.w[0].hpp == 512 ? MAX_OPS : MAX_OPS_1G;
	while (nops++ < max && in.i < in.n) {
		uint8_t b = next(&in);

		if (b >= HOSTILE) {
			ok = hostile(&rn, &in, b & 31);
		} else {
			decode(&in, &rn.w[rn.cur], b, &op);
			ok = step(&rn, &rn.w[rn.cur], &op, false);
		}
		if (!ok)
			break;
	}
	if (ok && print_traces)
		printf("%s", rn.trace.buf);
	for (int k = 1; k >= 0; k--) {
		if (rn.w[k].pool)
			gmem_pool_destroy(rn.w[k].pool);
		ref_free(rn.w[k].ref);
	}
	free(rn.trace.buf);
	return ok;
}

#ifdef FUZZ_LIBFUZZER

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_input(data, size);
	return 0;
}

#else

static unsigned int passed, failed;

static void run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!fp) {
		fprintf(stdout, "FAIL %s: %s\n", path, strerror(errno));
		failed++;
		return;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 4096;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		n = fread(buf + len, 1, cap - len, fp);
		if (!n)
			break;
		len += n;
	}
	fclose(fp);
	if (print_traces)
		printf("# %s\n", path);
	if (run_input(buf, len)) {
		passed++;
	} else {
		printf("FAIL %s\n", path);
		failed++;
	}
	fflush(stdout);
	free(buf);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path)
{
	struct stat st;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	DIR *dir;

	if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	dir = opendir(path);
	if (!dir) {
		printf("FAIL %s: %s\n", path, strerror(errno));
		failed++;
		return;
	}
	while ((de = readdir(dir))) {
		char *p;

		if (de->d_name[0] == '.')
			continue;
		p = malloc(strlen(path) + strlen(de->d_name) + 2);
		names = realloc(names, (n + 1) * sizeof(*names));
		if (!p || !names)
			abort();
		sprintf(p, "%s/%s", path, de->d_name);
		names[n++] = p;
	}
	closedir(dir);
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (!stat(names[i], &st) && S_ISREG(st.st_mode))
			run_file(names[i]);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	int i = 1;

	replay_mode = true;
	if (i < argc && !strcmp(argv[i], "-t")) {
		print_traces = true;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [-t] FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (; i < argc; i++)
		run_path(argv[i]);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif
