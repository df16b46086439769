// SPDX-License-Identifier: MIT
/*
 * trace.c - the trace replay engine (gmem-trace(5)).
 *
 * Each line is lexed into words and checked against the line alone: an
 * unknown command, option or flag, a missing or extra word, a malformed
 * number or name, a byte above 255, a bad enum value or a NUL byte anywhere
 * in the line is a syntax error (exit 2).  Only then does the command meet
 * the replay's state (the pool and three name tables: files, mms, pins),
 * and from there on everything is a result line, never a failure of the
 * replay.  The order of checks is the trace language's: names referenced (ENOENT),
 * the name defined (EEXIST), then the library's own checks (offsets and
 * lengths, then its rules).
 *
 * Output is a contract read word for word by other people's tests: change
 * a result's spelling only together with the trace language.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "gmem.h"
#include "hog.h"
#include "trace.h"

#define PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ------------------------------------------------------------ strings */

/* A growable string; @oom sticks once an allocation failed. */
struct sbuf {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void sb_reset(struct sbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

static bool sb_reserve(struct sbuf *sb, size_t more)
{
	size_t cap = sb->cap ? sb->cap : 128;
	char *buf;

	if (sb->len + more < sb->cap)
		return true;
	while (cap <= sb->len + more)
		cap *= 2;
	buf = realloc(sb->buf, cap);
	if (!buf) {
		sb->oom = true;
		return false;
	}
	sb->buf = buf;
	sb->cap = cap;
	return true;
}

static void PRINTF(2, 0) sb_vprintf(struct sbuf *sb, const char *fmt,
				      va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || !sb_reserve(sb, (size_t)n + 1))
		return;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

static void PRINTF(2, 3) sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(sb, fmt, ap);
	va_end(ap);
}

static const char *sb_str(const struct sbuf *sb)
{
	return sb->buf ? sb->buf : "";
}

/* --------------------------------------------------------- name tables */

/*
 * Files, mms and pins each have their own table: a name maps to a handle
 * (or a pin's id).  Chained hashing, so that traces with many thousands
 * of pins stay linear.
 */
struct name {
	struct name *next;
	union {
		struct gmem_file *file;
		struct gmem_mm *mm;
		uint64_t pin;
	} u;
	char key[];
};

struct names {
	struct name **slot;
	size_t nr_slots;
	size_t nr;
};

static size_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ULL;
	}
	return (size_t)h;
}

static struct name *names_find(const struct names *t, const char *key)
{
	struct name *n;

	if (!t->nr_slots)
		return NULL;
	for (n = t->slot[name_hash(key) & (t->nr_slots - 1)]; n; n = n->next)
		if (!strcmp(n->key, key))
			return n;
	return NULL;
}

/* Doubles the table once it averages one name a slot. */
static bool names_grow(struct names *t)
{
	size_t nr_slots = t->nr_slots ? t->nr_slots * 2 : 64;
	struct name **slot = calloc(nr_slots, sizeof(*slot));
	size_t i;

	if (!slot)
		return false;
	for (i = 0; i < t->nr_slots; i++) {
		struct name *n = t->slot[i], *next;

		for (; n; n = next) {
			size_t h = name_hash(n->key) & (nr_slots - 1);

			next = n->next;
			n->next = slot[h];
			slot[h] = n;
		}
	}
	free(t->slot);
	t->slot = slot;
	t->nr_slots = nr_slots;
	return true;
}

/* Adds @key, which must not be there yet.  Returns NULL without memory. */
static struct name *names_add(struct names *t, const char *key)
{
	size_t len = strlen(key);
	struct name *n;
	size_t h;

	if (t->nr >= t->nr_slots && !names_grow(t))
		return NULL;
	n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return NULL;
	memcpy(n->key, key, len + 1);
	h = name_hash(key) & (t->nr_slots - 1);
	n->next = t->slot[h];
	t->slot[h] = n;
	t->nr++;
	return n;
}

static void names_del(struct names *t, const char *key)
{
	struct name **pp, *n;

	if (!t->nr_slots)
		return;
	for (pp = &t->slot[name_hash(key) & (t->nr_slots - 1)]; (n = *pp);
	     pp = &n->next) {
		if (!strcmp(n->key, key)) {
			*pp = n->next;
			free(n);
			t->nr--;
			return;
		}
	}
}

static void names_free(struct names *t)
{
	size_t i;

	for (i = 0; i < t->nr_slots; i++) {
		struct name *n = t->slot[i], *next;

		for (; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

/* -------------------------------------------------------- replay state */

struct replay {
	FILE *out, *err;
	unsigned long lineno;
	struct gmem_pool *pool;
	struct names files, mms, pins;

	/* The current line's words (pointers into the line buffer). */
	char **argv;
	size_t argc, argv_cap;

	struct sbuf res;	/* this command's RESULT */
	struct sbuf prev;	/* the previous command's RESULT, for expect */
	struct sbuf msg;	/* a syntax error's text */
	bool oom;		/* the tool itself ran out of memory */
};

/* Return values of the command handlers. */
enum {
	RUN_OK = 0,		/* the result is in replay.res */
	RUN_SYNTAX = -1,	/* the message is in replay.msg */
};

static int PRINTF(2, 3) syntax(struct replay *r, const char *fmt, ...)
{
	va_list ap;

	sb_reset(&r->msg);
	va_start(ap, fmt);
	sb_vprintf(&r->msg, fmt, ap);
	va_end(ap);
	return RUN_SYNTAX;
}

static int PRINTF(2, 3) result(struct replay *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(&r->res, fmt, ap);
	va_end(ap);
	return RUN_OK;
}

static const char *errno_name(int err)
{
	const char *s = gmem_errno_name(err);

	return s && *s ? s : "E?";
}

/*
 * The result of a library call: 0, a positive outcome of an access, or a
 * negative errno.  @at is printed for the errors that carry an offset
 * (convert's EAGAIN/EBUSY, iommu's EFAULT/EHWPOISON) when the library set it.
 */
static int outcome_at(struct replay *r, int ret, bool has_at, uint64_t at)
{
	switch (ret) {
	case 0:
		return result(r, "ok");
	case GMEM_SIGBUS:
		return result(r, "sigbus");
	case GMEM_GUEST_FAULT:
		return result(r, "fault");
	case GMEM_GUEST_HWPOISON:
		return result(r, "hwpoison");
	}
	if (ret > 0)
		return result(r, "outcome %d", ret);
	if (has_at && at != UINT64_MAX)
		return result(r, "err %s at=0x%" PRIx64, errno_name(ret), at);
	return result(r, "err %s", errno_name(ret));
}

static int outcome(struct replay *r, int ret)
{
	return outcome_at(r, ret, false, 0);
}

/* ------------------------------------------------------------- lexing */

static bool is_space(char c)
{
	/* '\r' too, so that a trace saved with CRLF line ends still reads */
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Splits @line in place, dropping a comment.  Returns false without memory. */
static bool split_words(struct replay *r, char *line)
{
	char *p = strchr(line, '#');

	if (p)
		*p = '\0';
	r->argc = 0;
	for (p = line; *p;) {
		while (is_space(*p))
			*p++ = '\0';
		if (!*p)
			break;
		if (r->argc == r->argv_cap) {
			size_t cap = r->argv_cap ? r->argv_cap * 2 : 16;
			char **argv = realloc(r->argv, cap * sizeof(*argv));

			if (!argv)
				return false;
			r->argv = argv;
			r->argv_cap = cap;
		}
		r->argv[r->argc++] = p;
		while (*p && !is_space(*p))
			p++;
	}
	return true;
}

/* Decimal or 0x hex, with an optional binary suffix K, M, G or T. */
static bool parse_number(const char *s, uint64_t *out)
{
	unsigned int base = 10, shift = 0;
	const char *p = s;
	uint64_t v = 0;
	bool digits = false;

	if (p[0] == '0' && p[1] == 'x') {
		base = 16;
		p += 2;
	}
	for (;; p++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned int)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned int)(*p - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
		digits = true;
	}
	if (!digits)
		return false;
	switch (*p) {
	case 'K': shift = 10; p++; break;
	case 'M': shift = 20; p++; break;
	case 'G': shift = 30; p++; break;
	case 'T': shift = 40; p++; break;
	}
	if (*p || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = v << shift;
	return true;
}

/* [A-Za-z_][A-Za-z0-9_-]* */
static bool is_name(const char *s)
{
	const char *p = s;

	if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
	      *p == '_'))
		return false;
	for (p++; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return false;
	return true;
}

static int get_number(struct replay *r, const char *what, const char *s,
		      uint64_t *v)
{
	if (!parse_number(s, v))
		return syntax(r, "malformed number '%s' for %s", s, what);
	return RUN_OK;
}

static int get_byte(struct replay *r, const char *s, uint8_t *v)
{
	uint64_t n;

	if (get_number(r, "byte", s, &n))
		return RUN_SYNTAX;
	if (n > 255)
		return syntax(r, "byte above 255: '%s'", s);
	*v = (uint8_t)n;
	return RUN_OK;
}

static int get_name(struct replay *r, const char *what, const char *s)
{
	if (!is_name(s))
		return syntax(r, "malformed %s name '%s'", what, s);
	return RUN_OK;
}

struct enum_word {
	const char *word;
	int val;
};

static const struct enum_word backings[] = {
	{ "auto", GMEM_BACKING_AUTO },
	{ "hugetlb", GMEM_BACKING_HUGETLB },
	{ "memfd", GMEM_BACKING_MEMFD },
	{ "none", GMEM_BACKING_NONE },
	{ NULL, 0 },
};

static const struct enum_word policies[] = {
	{ "4k", GMEM_POLICY_4K },
	{ "a", GMEM_POLICY_A },
	{ "b-eager", GMEM_POLICY_B_EAGER },
	{ "b-lazy", GMEM_POLICY_B_LAZY },
	{ "b-adaptive", GMEM_POLICY_B_ADAPTIVE },
	{ NULL, 0 },
};

static int get_enum(struct replay *r, const char *what,
		    const struct enum_word *e, const char *s, int *v)
{
	for (; e->word; e++) {
		if (!strcmp(e->word, s)) {
			*v = e->val;
			return RUN_OK;
		}
	}
	return syntax(r, "unknown %s '%s'", what, s);
}

static bool is_stat_key(const char *key)
{
	static const struct gmem_stats zero;
	uint64_t v;

	return gmem_stat_get(&zero, key, &v) != -ENOENT;
}

/* ----------------------------------------------------------- commands */

#define MAX_FLAGS 4
#define MAX_OPTS 2

/*
 * A command's words: first @min positional words, then up to @max in all
 * as long as no flag or option came yet, then flags and key=value options
 * in any order.  Positional words are argv[1 .. 1 + npos).
 */
struct args {
	char **pos;
	int npos;
	unsigned int flags;		/* bit i: cmd.flags[i] was given */
	const char *opt[MAX_OPTS];	/* cmd.opts[i]'s value, or NULL */
};

struct cmd {
	const char *name;
	const char *usage;
	int min, max;
	const char *flags[MAX_FLAGS];
	const char *opts[MAX_OPTS];
	int (*run)(struct replay *r, const struct args *a);
};

/* Looks up a defined name; prints err ENOENT and returns NULL if none. */
static struct name *lookup(struct replay *r, struct names *t, const char *key)
{
	struct name *n = names_find(t, key);

	if (!n)
		result(r, "err %s", errno_name(-ENOENT));
	return n;
}

static int no_pool(struct replay *r)
{
	return outcome(r, -ENOENT);
}

static int defined_twice(struct replay *r)
{
	return outcome(r, -EEXIST);
}

static int cmd_pool(struct replay *r, const struct args *a)
{
	int backing = GMEM_BACKING_AUTO;
	uint64_t size = 0, count = 0;
	struct gmem_pool *pool = NULL;
	int ret;

	if (get_number(r, "page size", a->pos[0], &size) ||
	    get_number(r, "count", a->pos[1], &count))
		return RUN_SYNTAX;
	if (size != GMEM_2M && size != GMEM_1G)
		return syntax(r, "pool page size must be 2M or 1G, not '%s'",
			      a->pos[0]);
	if (a->opt[0] && get_enum(r, "backing", backings, a->opt[0], &backing))
		return RUN_SYNTAX;

	if (r->pool)
		return defined_twice(r);
	/* test runs may force hugetlb and a huge page hog: tools/hog.h */
	ret = testpool_create(size, count, (enum gmem_backing)backing, &pool);
	if (!ret)
		r->pool = pool;
	return outcome(r, ret);
}

static int cmd_file(struct replay *r, const struct args *a)
{
	int policy = GMEM_POLICY_B_LAZY;
	unsigned int flags = 0;
	struct gmem_file *file = NULL;
	struct name *n;
	uint64_t size = 0, delay = 0;
	int ret;

	if (get_name(r, "file", a->pos[0]) ||
	    get_number(r, "size", a->pos[1], &size))
		return RUN_SYNTAX;
	if (a->opt[0] && get_enum(r, "policy", policies, a->opt[0], &policy))
		return RUN_SYNTAX;
	if (a->opt[1]) {
		if (get_number(r, "merge_delay", a->opt[1], &delay))
			return RUN_SYNTAX;
		if (delay > UINT_MAX)
			return syntax(r, "merge_delay too large: '%s'",
				      a->opt[1]);
	}
	if (a->flags & 1)
		flags |= GMEM_FILE_INIT_SHARED;

	if (!r->pool)
		return no_pool(r);
	if (names_find(&r->files, a->pos[0]))
		return defined_twice(r);
	/* merge_delay= applies to b-adaptive only: EINVAL before creating */
	if (a->opt[1] && policy != GMEM_POLICY_B_ADAPTIVE)
		return outcome(r, -EINVAL);
	ret = gmem_file_create(r->pool, size, (enum gmem_policy)policy, flags,
			       &file);
	if (!ret && a->opt[1]) {
		ret = gmem_file_set_merge_delay(file, (unsigned int)delay);
		if (ret) {
			gmem_file_close(file);
			return outcome(r, ret);
		}
	}
	if (ret)
		return outcome(r, ret);
	n = names_add(&r->files, a->pos[0]);
	if (!n) {
		/* cannot name it: undo, so that the state matches the names */
		gmem_file_close(file);
		r->oom = true;
		return outcome(r, -ENOMEM);
	}
	n->u.file = file;
	return outcome(r, 0);
}

static int cmd_close(struct replay *r, const struct args *a)
{
	struct name *n;
	int ret;

	if (get_name(r, "file", a->pos[0]))
		return RUN_SYNTAX;

	n = lookup(r, &r->files, a->pos[0]);
	if (!n)
		return RUN_OK;
	ret = gmem_file_close(n->u.file);
	if (!ret)
		names_del(&r->files, a->pos[0]);
	return outcome(r, ret);
}

static int cmd_mm(struct replay *r, const struct args *a)
{
	struct gmem_mm *from = NULL, *mm = NULL;
	struct name *n;
	int ret;

	if (get_name(r, "mm", a->pos[0]) ||
	    (a->opt[0] && get_name(r, "mm", a->opt[0])))
		return RUN_SYNTAX;

	if (a->opt[0]) {
		n = lookup(r, &r->mms, a->opt[0]);
		if (!n)
			return RUN_OK;
		from = n->u.mm;
	}
	if (!r->pool)
		return no_pool(r);
	if (names_find(&r->mms, a->pos[0]))
		return defined_twice(r);
	ret = gmem_mm_create(r->pool, from, &mm);
	if (ret)
		return outcome(r, ret);
	n = names_add(&r->mms, a->pos[0]);
	if (!n) {
		/* the mm stays with the pool, unnamed, until it is destroyed */
		r->oom = true;
		return outcome(r, -ENOMEM);
	}
	n->u.mm = mm;
	return outcome(r, 0);
}

/* Looks up the <mm> <file> pair of a host command, in that order. */
static bool mm_file(struct replay *r, const char *mm_name,
		    const char *file_name, struct gmem_mm **mm,
		    struct gmem_file **file)
{
	struct name *m, *f;

	m = lookup(r, &r->mms, mm_name);
	if (!m)
		return false;
	f = lookup(r, &r->files, file_name);
	if (!f)
		return false;
	*mm = m->u.mm;
	*file = f->u.file;
	return true;
}

static int cmd_mmap(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	struct gmem_mm *mm;

	if (get_name(r, "mm", a->pos[0]) || get_name(r, "file", a->pos[1]))
		return RUN_SYNTAX;

	if (!mm_file(r, a->pos[0], a->pos[1], &mm, &file))
		return RUN_OK;
	return outcome(r, gmem_mmap(mm, file));
}

static int cmd_fault(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	struct gmem_mm *mm;
	uint64_t off = 0;

	if (get_name(r, "mm", a->pos[0]) || get_name(r, "file", a->pos[1]) ||
	    get_number(r, "offset", a->pos[2], &off))
		return RUN_SYNTAX;

	if (!mm_file(r, a->pos[0], a->pos[1], &mm, &file))
		return RUN_OK;
	return outcome(r, gmem_fault(mm, file, off,
				     (a->flags & 1) ? GMEM_WRITE : 0));
}

static int cmd_write(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	struct gmem_mm *mm;
	uint64_t off = 0;
	uint8_t val = 0;

	if (get_name(r, "mm", a->pos[0]) || get_name(r, "file", a->pos[1]) ||
	    get_number(r, "offset", a->pos[2], &off) ||
	    get_byte(r, a->pos[3], &val))
		return RUN_SYNTAX;

	if (!mm_file(r, a->pos[0], a->pos[1], &mm, &file))
		return RUN_OK;
	return outcome(r, gmem_host_write(mm, file, off, val));
}

static int cmd_read(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	struct gmem_mm *mm;
	uint8_t val = 0;
	uint64_t off = 0;
	int ret;

	if (get_name(r, "mm", a->pos[0]) || get_name(r, "file", a->pos[1]) ||
	    get_number(r, "offset", a->pos[2], &off))
		return RUN_SYNTAX;

	if (!mm_file(r, a->pos[0], a->pos[1], &mm, &file))
		return RUN_OK;
	ret = gmem_host_read(mm, file, off, &val);
	if (ret)
		return outcome(r, ret);
	return result(r, "0x%02x", val);
}

static int cmd_pin(struct replay *r, const struct args *a)
{
	uint64_t off = 0, len = GMEM_PAGE_SIZE, id = 0;
	unsigned int flags = 0;
	struct gmem_file *file;
	struct gmem_mm *mm;
	struct name *n;
	int ret;

	if (get_name(r, "pin", a->pos[0]) || get_name(r, "mm", a->pos[1]) ||
	    get_name(r, "file", a->pos[2]) ||
	    get_number(r, "offset", a->pos[3], &off) ||
	    (a->npos > 4 && get_number(r, "length", a->pos[4], &len)))
		return RUN_SYNTAX;
	if (a->flags & 1)
		flags |= GMEM_PIN_LONGTERM;
	if (a->flags & 2)
		flags |= GMEM_PIN_EXCLUSIVE;

	if (!mm_file(r, a->pos[1], a->pos[2], &mm, &file))
		return RUN_OK;
	if (names_find(&r->pins, a->pos[0]))
		return defined_twice(r);
	ret = gmem_pin(mm, file, off, len, flags, &id, NULL);
	if (ret)
		return outcome(r, ret);
	n = names_add(&r->pins, a->pos[0]);
	if (!n) {
		gmem_unpin(r->pool, id);
		r->oom = true;
		return outcome(r, -ENOMEM);
	}
	n->u.pin = id;
	return outcome(r, 0);
}

static int cmd_unpin(struct replay *r, const struct args *a)
{
	struct name *n;
	int ret;

	if (get_name(r, "pin", a->pos[0]))
		return RUN_SYNTAX;

	n = lookup(r, &r->pins, a->pos[0]);
	if (!n)
		return RUN_OK;
	ret = gmem_unpin(r->pool, n->u.pin);
	/* -ENOENT: the library holds no such pin, so neither do we */
	if (!ret || ret == -ENOENT)
		names_del(&r->pins, a->pos[0]);
	return outcome(r, ret);
}

/* Looks up the <file> of a guest-side or file command. */
static struct gmem_file *file_of(struct replay *r, const char *name)
{
	struct name *f = lookup(r, &r->files, name);

	return f ? f->u.file : NULL;
}

static int cmd_convert(struct replay *r, const struct args *a)
{
	uint64_t off = 0, len = 0, timeout = 0, at = UINT64_MAX;
	unsigned int flags = 0;
	struct gmem_file *file;
	enum gmem_attr to;
	int ret;

	if (get_name(r, "file", a->pos[0]) ||
	    get_number(r, "offset", a->pos[1], &off) ||
	    get_number(r, "length", a->pos[2], &len))
		return RUN_SYNTAX;
	switch (a->flags & 3) {
	case 1:
		to = GMEM_PRIVATE;
		break;
	case 2:
		to = GMEM_SHARED;
		break;
	default:
		return syntax(r, "convert needs one of private or shared");
	}
	if (a->flags & 4)
		flags |= GMEM_CONVERT_ZERO;
	if (a->opt[0]) {
		if (get_number(r, "timeout", a->opt[0], &timeout))
			return RUN_SYNTAX;
		if (timeout > INT_MAX)
			return syntax(r, "timeout too large: '%s'", a->opt[0]);
	}

	file = file_of(r, a->pos[0]);
	if (!file)
		return RUN_OK;
	ret = gmem_convert(file, off, len, to, flags, (int)timeout, &at);
	return outcome_at(r, ret, ret == -EAGAIN || ret == -EBUSY, at);
}

static int cmd_punch(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	uint64_t off = 0, len = 0;

	if (get_name(r, "file", a->pos[0]) ||
	    get_number(r, "offset", a->pos[1], &off) ||
	    get_number(r, "length", a->pos[2], &len))
		return RUN_SYNTAX;

	file = file_of(r, a->pos[0]);
	if (!file)
		return RUN_OK;
	return outcome(r, gmem_punch(file, off, len));
}

static int cmd_compact(struct replay *r, const struct args *a)
{
	struct gmem_file *file;

	if (get_name(r, "file", a->pos[0]))
		return RUN_SYNTAX;

	file = file_of(r, a->pos[0]);
	if (!file)
		return RUN_OK;
	return outcome(r, gmem_file_compact(file));
}

static int cmd_guest(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	uint64_t off = 0, len = 0;

	if (get_name(r, "file", a->pos[0]) ||
	    get_number(r, "offset", a->pos[1], &off) ||
	    (a->npos > 2 && get_number(r, "length", a->pos[2], &len)))
		return RUN_SYNTAX;

	file = file_of(r, a->pos[0]);
	if (!file)
		return RUN_OK;
	/* the library reads len 0 as one page; an explicit 0 is EINVAL */
	if (a->npos > 2 && !len)
		return outcome(r, -EINVAL);
	return outcome(r, gmem_guest_access(file, off, len,
					    (a->flags & 1) ? GMEM_WRITE : 0));
}

static int cmd_gwrite(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	uint64_t off = 0;
	uint8_t val = 0;

	if (get_name(r, "file", a->pos[0]) ||
	    get_number(r, "offset", a->pos[1], &off) ||
	    get_byte(r, a->pos[2], &val))
		return RUN_SYNTAX;

	file = file_of(r, a->pos[0]);
	if (!file)
		return RUN_OK;
	return outcome(r, gmem_guest_write(file, off, val));
}

static int cmd_gread(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	uint8_t val = 0;
	uint64_t off = 0;
	int ret;

	if (get_name(r, "file", a->pos[0]) ||
	    get_number(r, "offset", a->pos[1], &off))
		return RUN_SYNTAX;

	file = file_of(r, a->pos[0]);
	if (!file)
		return RUN_OK;
	ret = gmem_guest_read(file, off, &val);
	if (ret)
		return outcome(r, ret);
	return result(r, "0x%02x", val);
}

static int cmd_iommu(struct replay *r, const struct args *a)
{
	uint64_t off = 0, len = 0, at = UINT64_MAX;
	struct gmem_file *file;
	int ret;

	if (get_name(r, "file", a->pos[0]) ||
	    get_number(r, "offset", a->pos[1], &off) ||
	    get_number(r, "length", a->pos[2], &len))
		return RUN_SYNTAX;

	file = file_of(r, a->pos[0]);
	if (!file)
		return RUN_OK;
	ret = gmem_iommu_map(file, off, len, &at);
	return outcome_at(r, ret, ret == -EFAULT || ret == -EHWPOISON, at);
}

static int cmd_poison(struct replay *r, const struct args *a)
{
	struct gmem_file *file;
	uint64_t off = 0;

	if (get_name(r, "file", a->pos[0]) ||
	    get_number(r, "offset", a->pos[1], &off))
		return RUN_SYNTAX;

	file = file_of(r, a->pos[0]);
	if (!file)
		return RUN_OK;
	return outcome(r, gmem_poison(file, off));
}

static int cmd_check(struct replay *r, const struct args *a)
{
	char buf[1024], *p, *q;
	int ret;

	(void)a;
	if (!r->pool)
		return result(r, "ok");	/* no pool, nothing to violate */
	buf[0] = '\0';
	ret = gmem_check(r->pool, buf, sizeof(buf));
	buf[sizeof(buf) - 1] = '\0';
	if (ret != -EUCLEAN)
		return outcome(r, ret);
	/* one line, single spaces, so that an expect can name it */
	for (p = q = buf; *p; p++) {
		char c = is_space(*p) ? ' ' : *p;

		if (c == ' ' && (q == buf || q[-1] == ' '))
			continue;
		*q++ = c;
	}
	if (q > buf && q[-1] == ' ')
		q--;
	*q = '\0';
	return result(r, "violation: %s", buf);
}

/*
 * stats [<file>|-] [<key>...]: the first word is "-", a defined file, or
 * (if neither) the first key of a pool-wide stats.  The words after it are
 * keys whatever the first is, so an unknown one is a syntax error.
 */
static int cmd_stats(struct replay *r, const struct args *a)
{
	struct gmem_file *file = NULL;
	struct gmem_stats s;
	const char *sep = "";
	int i, first = 0, ret;

	for (i = 1; i < a->npos; i++)
		if (!is_stat_key(a->pos[i]))
			return syntax(r, "unknown stats key '%s'", a->pos[i]);
	if (a->npos && strcmp(a->pos[0], "-") && !is_name(a->pos[0]))
		return syntax(r, "malformed file name '%s'", a->pos[0]);

	if (a->npos && !strcmp(a->pos[0], "-")) {
		first = 1;
	} else if (a->npos) {
		struct name *n = names_find(&r->files, a->pos[0]);

		if (n) {
			file = n->u.file;
			first = 1;
		} else if (!is_stat_key(a->pos[0])) {
			return outcome(r, -ENOENT);
		}
	}
	if (!r->pool)
		return no_pool(r);
	memset(&s, 0, sizeof(s));
	ret = gmem_stats(r->pool, file, &s);
	if (ret)
		return outcome(r, ret);

	if (first == a->npos) {
		for (i = 0; i < (int)gmem_stat_nr_listed && gmem_stat_keys[i];
		     i++) {
			uint64_t v = 0;

			gmem_stat_get(&s, gmem_stat_keys[i], &v);
			result(r, "%s%s=%" PRIu64, sep, gmem_stat_keys[i], v);
			sep = " ";
		}
		return RUN_OK;
	}
	for (i = first; i < a->npos; i++) {
		uint64_t v = 0;

		gmem_stat_get(&s, a->pos[i], &v);
		result(r, "%s%s=%" PRIu64, sep, a->pos[i], v);
		sep = " ";
	}
	return RUN_OK;
}

static const struct cmd cmds[] = {
	{ "pool", "pool <2M|1G> <count> [backing=auto|hugetlb|memfd|none]",
	  2, 2, { NULL }, { "backing" }, cmd_pool },
	{ "file", "file <name> <size> [policy=4k|a|b-eager|b-lazy|b-adaptive] "
	  "[merge_delay=<n>] [shared]",
	  2, 2, { "shared" }, { "policy", "merge_delay" }, cmd_file },
	{ "close", "close <file>", 1, 1, { NULL }, { NULL }, cmd_close },
	{ "mm", "mm <name> [fork=<mm>]", 1, 1, { NULL }, { "fork" }, cmd_mm },
	{ "mmap", "mmap <mm> <file>", 2, 2, { NULL }, { NULL }, cmd_mmap },
	{ "fault", "fault <mm> <file> <off> [w]",
	  3, 3, { "w" }, { NULL }, cmd_fault },
	{ "write", "write <mm> <file> <off> <byte>",
	  4, 4, { NULL }, { NULL }, cmd_write },
	{ "read", "read <mm> <file> <off>",
	  3, 3, { NULL }, { NULL }, cmd_read },
	{ "pin", "pin <id> <mm> <file> <off> [len] [longterm] [exclusive]",
	  4, 5, { "longterm", "exclusive" }, { NULL }, cmd_pin },
	{ "unpin", "unpin <id>", 1, 1, { NULL }, { NULL }, cmd_unpin },
	{ "convert",
	  "convert <file> <off> <len> private|shared [zero] [timeout=<ms>]",
	  3, 3, { "private", "shared", "zero" }, { "timeout" }, cmd_convert },
	{ "punch", "punch <file> <off> <len>",
	  3, 3, { NULL }, { NULL }, cmd_punch },
	{ "compact", "compact <file>", 1, 1, { NULL }, { NULL }, cmd_compact },
	{ "guest", "guest <file> <off> [len] [w]",
	  2, 3, { "w" }, { NULL }, cmd_guest },
	{ "gwrite", "gwrite <file> <off> <byte>",
	  3, 3, { NULL }, { NULL }, cmd_gwrite },
	{ "gread", "gread <file> <off>", 2, 2, { NULL }, { NULL }, cmd_gread },
	{ "iommu", "iommu <file> <off> <len>",
	  3, 3, { NULL }, { NULL }, cmd_iommu },
	{ "poison", "poison <file> <off>",
	  2, 2, { NULL }, { NULL }, cmd_poison },
	{ "check", "check", 0, 0, { NULL }, { NULL }, cmd_check },
	{ "stats", "stats [<file>|-] [<key>...]",
	  0, INT_MAX, { NULL }, { NULL }, cmd_stats },
};

static const struct cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

/* Sorts the words after the command into positional, flags and options. */
static int parse_args(struct replay *r, const struct cmd *c, struct args *a)
{
	bool tail = false;	/* a flag or option came: no more positionals */
	size_t i;
	int j;

	memset(a, 0, sizeof(*a));
	a->pos = r->argv + 1;
	for (i = 1; i < r->argc; i++) {
		const char *w = r->argv[i];
		const char *eq = strchr(w, '=');

		if (a->npos < c->min) {
			a->npos++;
			continue;
		}
		if (eq) {
			size_t klen = (size_t)(eq - w);

			for (j = 0; j < MAX_OPTS && c->opts[j]; j++)
				if (strlen(c->opts[j]) == klen &&
				    !strncmp(c->opts[j], w, klen))
					break;
			if (j == MAX_OPTS || !c->opts[j])
				return syntax(r, "unknown option '%.*s' (%s)",
					      (int)klen, w, c->usage);
			a->opt[j] = eq + 1;
			tail = true;
			continue;
		}
		for (j = 0; j < MAX_FLAGS && c->flags[j]; j++)
			if (!strcmp(c->flags[j], w))
				break;
		if (j < MAX_FLAGS && c->flags[j]) {
			a->flags |= 1U << j;
			tail = true;
			continue;
		}
		if (tail || a->npos >= c->max)
			return syntax(r, "unexpected word '%s' (%s)", w,
				      c->usage);
		a->npos++;
	}
	if (a->npos < c->min)
		return syntax(r, "missing argument (%s)", c->usage);
	return RUN_OK;
}

/* expect <text...>: the rest of the line against the previous RESULT. */
static int run_expect(struct replay *r)
{
	struct sbuf want = { 0 };
	size_t i;
	int status;

	if (r->argc < 2) {
		syntax(r, "expect needs the result it expects");
		return TRACE_SYNTAX_ERROR;
	}
	for (i = 1; i < r->argc; i++)
		sb_printf(&want, "%s%s", i > 1 ? " " : "", r->argv[i]);
	if (want.oom) {
		r->oom = true;
		free(want.buf);
		return TRACE_IO_ERROR;
	}
	if (!strcmp(sb_str(&want), sb_str(&r->prev))) {
		result(r, "ok");
		status = TRACE_OK;
	} else {
		fprintf(r->out, "%lu: expect failed: wanted \"%s\", got \"%s\"\n",
			r->lineno, sb_str(&want), sb_str(&r->prev));
		status = TRACE_EXPECT_FAILED;
	}
	free(want.buf);
	return status;
}

/* Prints the syntax error of the current line (its text is in r->msg). */
static int print_syntax_error(struct replay *r)
{
	fflush(r->out);
	fprintf(r->err, "%lu: syntax error: %s\n", r->lineno, sb_str(&r->msg));
	return TRACE_SYNTAX_ERROR;
}

/* Runs the words of one line; the result goes to out, a syntax error to err. */
static int run_line(struct replay *r)
{
	const struct cmd *c;
	struct args a;
	int ret;

	sb_reset(&r->res);
	if (!strcmp(r->argv[0], "expect")) {
		ret = run_expect(r);
		if (ret != TRACE_OK) {
			if (ret == TRACE_SYNTAX_ERROR)
				goto syntax_error;
			return ret;
		}
	} else {
		c = find_cmd(r->argv[0]);
		if (!c) {
			syntax(r, "unknown command '%s'", r->argv[0]);
			goto syntax_error;
		}
		if (parse_args(r, c, &a) || c->run(r, &a))
			goto syntax_error;
	}
	if (r->res.oom || r->oom) {
		r->oom = true;
		return TRACE_IO_ERROR;
	}
	fprintf(r->out, "%lu: %s\n", r->lineno, sb_str(&r->res));

	/* this result is what the next line's expect compares with */
	{
		struct sbuf t = r->prev;

		r->prev = r->res;
		r->res = t;
	}
	return TRACE_OK;

syntax_error:
	return print_syntax_error(r);
}

int trace_replay(FILE *in, const char *name, FILE *out, FILE *err)
{
	struct replay r = { .out = out, .err = err };
	int status = TRACE_OK;
	char *line = NULL, *nul;
	size_t cap = 0;
	ssize_t len;

	errno = 0;
	while ((len = getline(&line, &cap, in)) >= 0) {
		r.lineno++;
		/*
		 * A trace is text: a NUL byte would silently end the line
		 * for everything below, so it is malformed wherever it is.
		 */
		nul = memchr(line, '\0', (size_t)len);
		if (nul) {
			syntax(&r, "NUL byte at column %zu",
			       (size_t)(nul - line) + 1);
			status = print_syntax_error(&r);
			break;
		}
		if (!split_words(&r, line)) {
			r.oom = true;
			break;
		}
		if (!r.argc)
			continue;
		status = run_line(&r);
		if (status != TRACE_OK)
			break;
	}
	if (r.oom) {
		fflush(out);
		fprintf(err, "gmem: %s:%lu: out of memory\n", name, r.lineno);
		status = TRACE_IO_ERROR;
	} else if (status == TRACE_OK && ferror(in)) {
		fflush(out);
		fprintf(err, "gmem: %s: read error: %s\n", name, strerror(errno));
		status = TRACE_IO_ERROR;
	}
	fflush(out);

	if (r.pool)
		testpool_destroy(r.pool);
	names_free(&r.files);
	names_free(&r.mms);
	names_free(&r.pins);
	free(r.argv);
	free(r.res.buf);
	free(r.prev.buf);
	free(r.msg.buf);
	free(line);
	return status;
}
