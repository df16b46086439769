// SPDX-License-Identifier: MIT
/*
 * fuzz.c - differential fuzzing of libgmem against the reference model
 * (ref.c).
 *
 * An input is decoded into a short sequence of trace commands (one pool,
 * then files of every policy, mms, forks, mappings, host and guest
 * accesses, pins, conversions, punches, IOMMU maps, poison and closes).
 * Each command runs on libgmem through the public API (gmem.h), with the
 * same name tables and the same printing as `gmem replay`, and on the
 * reference; their results must print the same.  After every command
 * gmem_check() must pass and the statistics (pool-wide and of every open
 * file, every TRACE.md key but meta_bytes) must be equal.  On a
 * difference the command sequence is printed as a trace that `gmem
 * replay` runs (every result the reference's, as an `expect`), and the
 * fuzzer aborts.
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
	C_IOMMU, C_POISON,
};

/* A decoded command. */
struct op {
	enum cmd cmd;
	int file, mm, pin, from;	/* name indices; from: -1 no fork */
	uint64_t off, len, size;
	uint8_t val;
	int policy;
	bool shared, w, longterm, exclusive, to_shared, zero, has_len;
};

struct run {
	struct ref *ref;
	struct gmem_pool *pool;
	struct gmem_file *file[NR_FILES];
	uint64_t fsize[NR_FILES];	/* by name, for decoding offsets */
	struct gmem_mm *mm[NR_MMS];
	bool pin_held[NR_PINS];
	uint64_t pin_id[NR_PINS];
	uint64_t psize, hpp;
	bool none;
	struct sbuf trace;
	bool failed;
};

static const char *const policy_word[] = { "4k", "a", "b-eager", "b-lazy" };
static const enum gmem_policy policy_lib[] = {
	GMEM_POLICY_4K, GMEM_POLICY_A, GMEM_POLICY_B_EAGER, GMEM_POLICY_B_LAZY,
};
static const enum ref_policy policy_ref[] = {
	REF_4K, REF_A, REF_B_EAGER, REF_B_LAZY,
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
static uint64_t npages_of(const struct run *rn, int f)
{
	return (rn->file[f] ? rn->fsize[f] : rn->psize) / 4096;
}

/*
 * A page index in file @f: interesting places inside huge pages, the first
 * pages of the first two, anywhere, or the end of the file (and past it).
 */
static uint64_t dec_page(struct input *in, const struct run *rn, int f)
{
	uint64_t np = npages_of(rn, f), hpp = rn->hpp, k;
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
static void dec_range(struct input *in, const struct run *rn, int f,
		      uint64_t page, uint64_t *off, uint64_t *len)
{
	uint64_t np = npages_of(rn, f), hpp = rn->hpp, n;
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

/* Decodes one command; false at the end of the input. */
static bool decode(struct input *in, const struct run *rn, struct op *op)
{
	uint8_t b, b2;

	if (in->i >= in->n)
		return false;
	memset(op, 0, sizeof(*op));
	op->from = -1;
	b = next(in);
	switch (b % 32) {
	case 0: case 1: case 2: {
		/* file: name, policy, shared, size (1-4 huge pages; 1-2 on a
		 * 1G pool; now and then a size that is not a multiple) */
		static const uint64_t slots2m[8] = { 1, 2, 3, 4, 1, 2, 0, 1 };
		static const uint64_t slots1g[8] = { 1, 1, 2, 1, 1, 2, 0, 1 };
		uint64_t ns;

		b = next(in);
		op->cmd = C_FILE;
		op->file = b & 3;
		op->policy = (b >> 2) & 3;
		op->shared = (b >> 4) & 1;
		ns = (rn->hpp == 512 ? slots2m : slots1g)[b >> 5];
		op->size = ns ? ns * rn->psize : rn->psize + rn->psize / 2;
		return true;
	}
	case 3:
		op->cmd = C_CLOSE;
		op->file = next(in) & 3;
		return true;
	case 4:
		b = next(in);
		op->cmd = C_MM;
		op->mm = b & 3;
		op->from = ((b >> 2) & 7) < 4 ? (b >> 2) & 3 : -1;
		return true;
	case 5: case 6:
		b = next(in);
		op->cmd = C_MMAP;
		op->mm = b & 3;
		op->file = (b >> 2) & 3;
		return true;
	case 7: case 8: case 9: case 10: case 11: case 12:
		b = next(in);
		op->cmd = (b >> 6) == 0 ? C_FAULT : (b >> 6) == 1 ? C_WRITE :
			  C_READ;
		op->mm = b & 3;
		op->file = (b >> 2) & 3;
		op->w = (b >> 4) & 1;
		b2 = next(in);
		op->off = dec_page(in, rn, op->file) * 4096 + dec_inpage(b2);
		op->val = (uint8_t)(b2 >> 3 | 1);
		return true;
	case 13: case 14: case 15:
		b = next(in);
		op->cmd = C_PIN;
		op->pin = b & 7;
		op->mm = (b >> 3) & 3;
		op->longterm = (b >> 5) & 1;
		op->exclusive = ((b >> 6) & 3) == 3;
		op->file = next(in) & 3;
		op->off = dec_page(in, rn, op->file);
		dec_range(in, rn, op->file, op->off, &op->off, &op->len);
		return true;
	case 16: case 17:
		op->cmd = C_UNPIN;
		op->pin = next(in) & 7;
		return true;
	case 18: case 19: case 20: case 21:
		b = next(in);
		op->cmd = C_CONVERT;
		op->file = b & 3;
		op->to_shared = (b >> 2) & 1;
		op->zero = ((b >> 3) & 3) == 3;
		op->off = dec_page(in, rn, op->file);
		dec_range(in, rn, op->file, op->off, &op->off, &op->len);
		return true;
	case 22: case 23:
		op->cmd = C_PUNCH;
		op->file = next(in) & 3;
		op->off = dec_page(in, rn, op->file);
		dec_range(in, rn, op->file, op->off, &op->off, &op->len);
		return true;
	case 24: case 25:
		b = next(in);
		op->cmd = C_GUEST;
		op->file = b & 3;
		op->w = (b >> 2) & 1;
		op->has_len = (b >> 3) & 1;
		op->off = dec_page(in, rn, op->file) * 4096;
		if (op->has_len) {
			uint64_t o;

			dec_range(in, rn, op->file, op->off / 4096, &o,
				  &op->len);
			/* guest takes any length; keep it whole pages */
			op->len = (op->len + 4095) / 4096 * 4096;
			if (!op->len)
				op->len = 4096;
		} else {
			op->off += dec_inpage(b >> 4);
		}
		return true;
	case 26: case 27:
		b = next(in);
		op->cmd = (b >> 7) ? C_GWRITE : C_GREAD;
		op->file = b & 3;
		op->off = dec_page(in, rn, op->file) * 4096 +
			  dec_inpage(b >> 2);
		op->val = (uint8_t)(next(in) | 0x80);
		return true;
	case 28: case 29:
		op->cmd = C_IOMMU;
		op->file = next(in) & 3;
		op->off = dec_page(in, rn, op->file);
		dec_range(in, rn, op->file, op->off, &op->off, &op->len);
		return true;
	case 30:
		b = next(in);
		op->cmd = C_POISON;
		op->file = b & 3;
		op->off = dec_page(in, rn, op->file) * 4096 +
			  (((b >> 2) & 15) == 15 ? 0x10 : 0);
		return true;
	default:
		/* a second pool: err EEXIST */
		op->cmd = C_POOL;
		return true;
	}
}

/* ------------------------------------------------ the trace line of an op */

static void op_line(const struct run *rn, const struct op *op, char *buf,
		    size_t len)
{
	const char *f = fname(op->file), *m = mname(op->mm);

	switch (op->cmd) {
	case C_POOL:
		snprintf(buf, len, "pool %s 1", rn->hpp == 512 ? "2M" : "1G");
		break;
	case C_FILE:
		snprintf(buf, len, "file %s 0x%" PRIx64 " policy=%s%s", f,
			 op->size, policy_word[op->policy],
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
	}
}

/* ------------------------------------------------------- the reference */

static struct ref_res ref_run(struct run *rn, const struct op *op)
{
	struct ref *r = rn->ref;
	const char *f = fname(op->file), *m = mname(op->mm);

	switch (op->cmd) {
	case C_POOL:
		return ref_pool(r, rn->psize, 1, false);
	case C_FILE:
		return ref_file(r, f, op->size, policy_ref[op->policy],
				op->shared);
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

/*
 * Runs @op on libgmem with the replay engine's name rules (TRACE.md "Order
 * of checks": names referenced, then the name defined, then the library).
 */
static void lib_run(struct run *rn, const struct op *op, char *buf, size_t len)
{
	struct gmem_file *f = rn->file[op->file];
	struct gmem_mm *m = rn->mm[op->mm];
	uint64_t at = UINT64_MAX, id = 0;
	uint8_t val = 0;
	int ret;

#define ENOENT_IF(c) do { if (c) { lib_str(-ENOENT, false, 0, buf, len); return; } } while (0)
#define EEXIST_IF(c) do { if (c) { lib_str(-EEXIST, false, 0, buf, len); return; } } while (0)
	switch (op->cmd) {
	case C_POOL:
		EEXIST_IF(rn->pool);
		abort();
	case C_FILE:
		EEXIST_IF(f);
		ret = gmem_file_create(rn->pool, op->size,
				       policy_lib[op->policy],
				       op->shared ? GMEM_FILE_INIT_SHARED : 0,
				       &f);
		if (!ret) {
			rn->file[op->file] = f;
			rn->fsize[op->file] = op->size;
		}
		break;
	case C_CLOSE:
		ENOENT_IF(!f);
		ret = gmem_file_close(f);
		if (!ret)
			rn->file[op->file] = NULL;
		break;
	case C_MM:
		ENOENT_IF(op->from >= 0 && !rn->mm[op->from]);
		EEXIST_IF(m);
		ret = gmem_mm_create(rn->pool,
				     op->from >= 0 ? rn->mm[op->from] : NULL,
				     &m);
		if (!ret)
			rn->mm[op->mm] = m;
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
		EEXIST_IF(rn->pin_held[op->pin]);
		ret = gmem_pin(m, f, op->off, op->len,
			       (op->longterm ? GMEM_PIN_LONGTERM : 0) |
			       (op->exclusive ? GMEM_PIN_EXCLUSIVE : 0),
			       &id, NULL);
		if (!ret) {
			rn->pin_held[op->pin] = true;
			rn->pin_id[op->pin] = id;
		}
		break;
	case C_UNPIN:
		ENOENT_IF(!rn->pin_held[op->pin]);
		ret = gmem_unpin(rn->pool, rn->pin_id[op->pin]);
		if (!ret || ret == -ENOENT)
			rn->pin_held[op->pin] = false;
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
		"(tests/fuzz/ref.c)\n%s", what, rn->trace.buf);
	fflush(out);
	rn->failed = true;
	if (!replay_mode)
		abort();
}

/* Compares the pool-wide (@i < 0) or file @i's statistics. */
static bool stats_equal(struct run *rn, int i)
{
	const char *name = i < 0 ? "-" : fname(i);
	struct ref_stats want;
	struct gmem_stats got;
	char keys[1024] = "", wstr[2048] = "", gstr[2048] = "";
	bool same = true;
	int ret;

	memset(&got, 0, sizeof(got));
	ret = ref_stats(rn->ref, i < 0 ? NULL : name, &want);
	if (ret) {
		sb_printf(&rn->trace, "stats %s\nexpect err ENOENT\n", name);
		report(rn, "a file the reference does not know");
		return false;
	}
	ret = gmem_stats(rn->pool, i < 0 ? NULL : rn->file[i], &got);
	if (ret) {
		sb_printf(&rn->trace, "stats %s\n# got: err %s\n", name,
			  gmem_errno_name(ret));
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
		sb_printf(&rn->trace, "stats %s%s\nexpect %s\n# got: %s\n",
			  name, keys, wstr, gstr);
		report(rn, "statistics differ");
	}
	return same;
}

/* Runs one command on both and compares everything; false on a failure. */
static bool step(struct run *rn, const struct op *op)
{
	char line[256], want[128], got[128], msg[512];
	struct ref_res res;

	op_line(rn, op, line, sizeof(line));
	res = ref_run(rn, op);
	ref_res_str(&res, want, sizeof(want));
	lib_run(rn, op, got, sizeof(got));
	sb_printf(&rn->trace, "%s\nexpect %s\n", line, want);
	if (strcmp(want, got)) {
		sb_printf(&rn->trace, "# got: %s\n", got);
		report(rn, "results differ");
		return false;
	}
	msg[0] = '\0';
	if (gmem_check(rn->pool, msg, sizeof(msg))) {
		msg[sizeof(msg) - 1] = '\0';
		sb_printf(&rn->trace, "check\nexpect ok\n# got: violation: %s\n",
			  msg);
		report(rn, "gmem_check() found a violation");
		return false;
	}
	if (!stats_equal(rn, -1))
		return false;
	for (int i = 0; i < NR_FILES; i++)
		if (rn->file[i] && !stats_equal(rn, i))
			return false;
	return true;
}

/*
 * One input.  Its first byte picks the pool: 2M pages (31 in 32), 1-8 of
 * them, memfd backing or none (1 in 4); or 1G pages, 1-2 of them, memfd
 * backing (1 in 4) or none.  A 1G input runs at most MAX_OPS_1G commands:
 * each costs scans of 262144 pages on both sides (and with memory, zeroing
 * a b-eager 1G page costs libgmem 262144 fallocate() calls).
 */
static bool run_input(const uint8_t *data, size_t size)
{
	struct input in = { data, size, 0 };
	struct run rn;
	struct op op;
	uint8_t h = next(&in);
	bool ok = true;
	int nops = 0, ret;

	memset(&rn, 0, sizeof(rn));
	rn.psize = (h & 31) == 31 ? GMEM_1G : GMEM_2M;
	rn.hpp = rn.psize / 4096;
	if (rn.psize == GMEM_2M)
		rn.none = ((h >> 3) & 3) == 3;
	else
		rn.none = ((h >> 5) & 3) != 3;
	{
		uint64_t count = rn.psize == GMEM_2M ? 1 + (h >> 5) :
						      1 + (h >> 7);
		struct ref_res res;
		char want[64];

		rn.ref = ref_new();
		res = ref_pool(rn.ref, rn.psize, count, rn.none);
		ref_res_str(&res, want, sizeof(want));
		sb_printf(&rn.trace, "pool %s %" PRIu64 " backing=%s\nexpect %s\n",
			  rn.psize == GMEM_2M ? "2M" : "1G", count,
			  rn.none ? "none" : "memfd", want);
		ret = gmem_pool_create(rn.psize, count,
				       rn.none ? GMEM_BACKING_NONE :
						 GMEM_BACKING_MEMFD, &rn.pool);
		if (ret) {
			sb_printf(&rn.trace, "# got: err %s\n",
				  gmem_errno_name(ret));
			report(&rn, "pool creation failed");
			ref_free(rn.ref);
			free(rn.trace.buf);
			return false;
		}
	}
	while (nops++ < (rn.hpp == 512 ? MAX_OPS : MAX_OPS_1G) &&
	       decode(&in, &rn, &op))
		if (!(ok = step(&rn, &op)))
			break;
	if (ok && print_traces)
		printf("%s", rn.trace.buf);
	gmem_pool_destroy(rn.pool);
	ref_free(rn.ref);
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
