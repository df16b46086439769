// SPDX-License-Identifier: MIT
/*
 * test_trace.c - the trace replay engine against TRACE.md, word for word.
 *
 * Each test replays a trace held in a string and compares what replay
 * printed on out and on err, and its exit code, with the contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../../tools/trace.h"

struct run {
	int status;
	char *out, *err;
};

/* Replays the @len bytes of @trace (which may hold NUL bytes). */
static bool replay_bytes(const char *trace, size_t len, struct run *r)
{
	size_t out_len = 0, err_len = 0;
	FILE *in, *out, *err;

	r->out = r->err = NULL;
	in = fmemopen((void *)trace, len, "r");
	out = open_memstream(&r->out, &out_len);
	err = open_memstream(&r->err, &err_len);
	CHECK(in && out && err);
	r->status = trace_replay(in, "test", out, err);
	fclose(in);
	fclose(out);
	fclose(err);
	return true;
}

static bool replay(const char *trace, struct run *r)
{
	return replay_bytes(trace, strlen(trace), r);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* @trace gives exactly @out and @err, and exits @status. */
static bool expect_run(const char *trace, int status, const char *out,
		       const char *err)
{
	struct run r;
	bool ok;

	CHECK(replay(trace, &r));
	ok = r.status == status && !strcmp(r.out, out) && !strcmp(r.err, err);
	if (!ok)
		fprintf(stderr, "trace:\n%s--- exit %d (wanted %d), out:\n%s"
			"--- wanted:\n%s--- err:\n%s--- wanted:\n%s---\n",
			trace, r.status, status, r.out, out, r.err, err);
	run_free(&r);
	return ok;
}

/* @trace stops at its last line with a syntax error whose text is @what. */
static bool expect_syntax(const char *trace, const char *what)
{
	struct run r;
	char *nl, line[64];
	unsigned int lines = 0;
	const char *p;
	bool ok;

	for (p = trace; (nl = strchr(p, '\n')); p = nl + 1)
		lines++;
	snprintf(line, sizeof(line), "%u: syntax error: ", lines);
	CHECK(replay(trace, &r));
	ok = r.status == TRACE_SYNTAX_ERROR &&
	     !strncmp(r.err, line, strlen(line)) &&
	     strstr(r.err + strlen(line), what) && !strchr(r.err, '\n')[1];
	if (!ok)
		fprintf(stderr, "trace:\n%s--- exit %d, err:\n%s--- wanted "
			"\"%s...%s\"\n", trace, r.status, r.err, line, what);
	run_free(&r);
	return ok;
}

/* TRACE.md's example, and the result of each kind of command. */
static bool test_example(void)
{
	return expect_run(
		"pool 2M 2 backing=memfd\n"
		"file g 2M policy=b-lazy\n"
		"mm vmm\n"
		"mmap vmm g\n"
		"guest g 0\n"
		"convert g 0x1000 4K shared\n"
		"expect ok\n"
		"write vmm g 0x1000 0xab\n"
		"expect ok\n"
		"read vmm g 0x2000\n"
		"expect sigbus\n"
		"pin p1 vmm g 0x1000\n"
		"convert g 0x1000 4K private\n"
		"expect err EAGAIN at=0x1000\n"
		"unpin p1\n"
		"convert g 0x1000 4K private\n"
		"expect ok\n"
		"gread g 0x1000\n"
		"expect 0xab\n"
		"gread g 0x200000\n"
		"expect fault\n"
		"check\n"
		"expect ok\n",
		TRACE_OK,
		"1: ok\n2: ok\n3: ok\n4: ok\n5: ok\n6: ok\n7: ok\n8: ok\n"
		"9: ok\n10: sigbus\n11: ok\n12: ok\n13: err EAGAIN at=0x1000\n"
		"14: ok\n15: ok\n16: ok\n17: ok\n18: 0xab\n19: ok\n"
		"20: fault\n21: ok\n22: ok\n23: ok\n",
		"");
}

/* Comments, blank lines, tabs, CRLF, every form of number. */
static bool test_lexical(void)
{
	return expect_run(
		"# a comment\n"
		"\n"
		"  \t \n"
		"pool\t2M  1 backing=memfd   # trailing\n"
		"file f 0x200000 shared\r\n"
		"mm m\n"
		"mmap m f\n"
		"write m f 4K 10\n"
		"read m f 0x1000\n"
		"write m f 1M 0xFf\n"
		"read m f 1048576\n"
		"read m f 0x1G\n"
		"read m f 0\n"
		"expect   0x00   # words joined by single spaces\n",
		TRACE_OK,
		"4: ok\n5: ok\n6: ok\n7: ok\n8: ok\n9: 0x0a\n10: ok\n11: 0xff\n"
		"12: sigbus\n13: 0x00\n14: ok\n",
		"");
}

static bool test_expect_failed(void)
{
	return expect_run(
		"pool 2M 1 backing=memfd\n"
		"expect err EEXIST\n"
		"check\n",
		TRACE_EXPECT_FAILED,
		"1: ok\n2: expect failed: wanted \"err EEXIST\", got \"ok\"\n",
		"") &&
	       expect_run("expect ok\n", TRACE_EXPECT_FAILED,
			  "1: expect failed: wanted \"ok\", got \"\"\n", "");
}

static bool test_syntax_errors(void)
{
	static const char *const lines[][2] = {
		{ "frob", "unknown command 'frob'" },
		{ "pool 3M 1", "'3M'" },
		{ "pool 2M", "missing argument" },
		{ "pool 2M 1 backing=foo", "unknown backing 'foo'" },
		{ "pool 2M 1 size=3", "unknown option 'size'" },
		{ "file 9f 2M", "malformed file name '9f'" },
		{ "file f 12x", "malformed number '12x'" },
		{ "file f 2M policy=c", "unknown policy 'c'" },
		{ "file f 2M private", "unexpected word 'private'" },
		{ "read m f 4k", "malformed number '4k'" },
		{ "read m f 0x", "malformed number '0x'" },
		{ "read m f -1", "malformed number '-1'" },
		{ "read m f 18446744073709551616", "malformed number" },
		{ "read m f 16777216T", "malformed number" },
		{ "write m f 0 256", "byte above 255" },
		{ "gwrite f 0 0x100", "byte above 255" },
		{ "convert f 0 4K", "private or shared" },
		{ "convert f 0 4K shared timeout=-1", "malformed number '-1'" },
		{ "fault m f 0 r", "unexpected word 'r'" },
		{ "stats - pool_bogus", "unknown stats key 'pool_bogus'" },
		{ "stats f pins bogus", "unknown stats key 'bogus'" },
		{ "check now", "unexpected word 'now'" },
		{ "expect", "expect" },
		{ "unpin 1", "malformed pin name '1'" },
	};
	char trace[256];
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		/* state is there, yet the line alone decides */
		snprintf(trace, sizeof(trace),
			 "pool 2M 1 backing=memfd\nfile f 2M\nmm m\n%s\n",
			 lines[i][0]);
		CHECK(expect_syntax(trace, lines[i][1]));
	}
	/* a syntax error stops the replay; what ran before is printed */
	return expect_run("pool 2M 1 backing=memfd\nfile f 2M extra\ncheck\n",
			  TRACE_SYNTAX_ERROR, "1: ok\n",
			  "2: syntax error: unexpected word 'extra' (file "
			  "<name> <size> [policy=4k|a|b-eager|b-lazy|b-adaptive] "
			  "[merge_delay=<n>] "
			  "[shared])\n");
}

/* ENOENT, then EEXIST, then EINVAL; a failed pin defines nothing. */
/*
 * A NUL byte is a syntax error wherever it is in a line, a comment
 * included: nothing after it is silently dropped.
 */
static bool test_nul_byte(void)
{
#define NUL_CASE(t, o, e) { t, sizeof(t) - 1, o, e }
	static const struct {
		const char *trace;
		size_t len;
		const char *out, *err;
	} cases[] = {
		NUL_CASE("pool 2M 1 backing=none\nmm m\0 junk\ncheck\n",
			 "1: ok\n", "2: syntax error: NUL byte at column 5\n"),
		NUL_CASE("pool 2M 1 backing=none\n\0\n", "1: ok\n",
			 "2: syntax error: NUL byte at column 1\n"),
		NUL_CASE("pool 2M 1 backing=none # a\0b\n", "",
			 "1: syntax error: NUL byte at column 27\n"),
		NUL_CASE("pool 2M 1 backing=none\nmm m\0", "1: ok\n",
			 "2: syntax error: NUL byte at column 5\n"),
	};
#undef NUL_CASE
	struct run r;
	size_t i;
	bool ok;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(replay_bytes(cases[i].trace, cases[i].len, &r));
		ok = r.status == TRACE_SYNTAX_ERROR &&
		     !strcmp(r.out, cases[i].out) &&
		     !strcmp(r.err, cases[i].err);
		if (!ok)
			fprintf(stderr, "case %zu: exit %d, out:\n%s--- err:\n"
				"%s--- wanted exit %d, out:\n%s--- err:\n%s---\n",
				i, r.status, r.out, r.err, TRACE_SYNTAX_ERROR,
				cases[i].out, cases[i].err);
		run_free(&r);
		CHECK(ok);
	}
	return true;
}

static bool test_names(void)
{
	return expect_run(
		"file f 2M\n"				/* 1: no pool yet */
		"mm m\n"
		"stats\n"
		"pool 2M 2 backing=memfd\n"
		"pool 2M 2 backing=memfd\n"		/* 5 */
		"file f 2M shared\n"
		"file f 3M\n"
		"file g 3M\n"
		"mm m\n"
		"mm m\n"				/* 10 */
		"mm n fork=x\n"
		"mmap m f\n"
		"pin p m f 1\n"
		"pin p m f 0\n"
		"pin p m f 1\n"				/* 15 */
		"pin p x f 0\n"
		"unpin p\n"
		"unpin p\n"
		"pin p m f 0 8K longterm exclusive\n"
		"unpin q\n"				/* 20 */
		"close f\n"
		"close f\n"
		"stats f pins\n"
		"file f 2M\n"
		"unpin p\n"				/* 25 */
		"read m g 0\n",
		TRACE_OK,
		"1: err ENOENT\n2: err ENOENT\n3: err ENOENT\n4: ok\n"
		"5: err EEXIST\n6: ok\n7: err EEXIST\n8: err EINVAL\n9: ok\n"
		"10: err EEXIST\n11: err ENOENT\n12: ok\n13: err EINVAL\n"
		"14: ok\n15: err EEXIST\n16: err ENOENT\n17: ok\n"
		"18: err ENOENT\n19: ok\n20: err ENOENT\n21: ok\n"
		"22: err ENOENT\n23: err ENOENT\n24: ok\n25: ok\n"
		"26: err ENOENT\n",
		"");
}

/* The three forms of stats; the default keys are the listed ones. */
static bool test_stats(void)
{
	static const char head[] =
		"1: ok\n2: ok\n3: ok\n4: ok\n5: ok\n"
		"6: pool_total=3 pool_resv=0\n"
		"7: pool_total=3 host_ptes=1\n"
		"8: pool_total=3 pool_resv=0 host_ptes=1\n"
		"9: err ENOENT\n"
		"10: ";
	struct gmem_stats s;
	struct run r;
	const char *p;
	unsigned int i;
	uint64_t v;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < gmem_stat_nr_listed; i++) {
		CHECK(gmem_stat_keys[i]);
		CHECK_EQ(gmem_stat_get(&s, gmem_stat_keys[i], &v), 0);
	}
	CHECK(replay("pool 2M 3 backing=memfd\n"
		     "file f 2M shared\n"
		     "mm m\n"
		     "mmap m f\n"
		     "fault m f 0\n"
		     "stats - pool_total pool_resv\n"
		     "stats pool_total host_ptes\n"
		     "stats f pool_total pool_resv host_ptes\n"
		     "stats nofile\n"
		     "stats f\n", &r));
	CHECK_EQ(r.status, TRACE_OK);
	CHECK(!strncmp(r.out, head, strlen(head)));
	/* line 10: every listed key, in gmem_stat_keys' order, decimal */
	p = r.out + strlen(head);
	for (i = 0; i < gmem_stat_nr_listed; i++) {
		size_t n = strlen(gmem_stat_keys[i]);

		CHECK(!strncmp(p, gmem_stat_keys[i], n) && p[n] == '=');
		p += n + 1;
		CHECK(*p >= '0' && *p <= '9');
		while (*p >= '0' && *p <= '9')
			p++;
		CHECK(*p == (i + 1 < gmem_stat_nr_listed ? ' ' : '\n'));
		p++;
	}
	CHECK(!*p);
	run_free(&r);
	return true;
}

/* backing=none: content commands give ENXIO, the others work. */
static bool test_backing_none(void)
{
	return expect_run(
		"pool 2M 1 backing=none\n"
		"file f 2M shared\n"
		"mm m\n"
		"mmap m f\n"
		"write m f 0 1\n"
		"read m f 0\n"
		"gwrite f 0 1\n"
		"gread f 0\n"
		"fault m f 0 w\n"
		"guest f 0 2M w\n"
		"guest f 0 0\n",
		TRACE_OK,
		"1: ok\n2: ok\n3: ok\n4: ok\n5: err ENXIO\n6: err ENXIO\n"
		"7: err ENXIO\n8: err ENXIO\n9: ok\n10: ok\n11: err EINVAL\n",
		"");
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_example),
		TEST(test_lexical),
		TEST(test_expect_failed),
		TEST(test_syntax_errors),
		TEST(test_nul_byte),
		TEST(test_names),
		TEST(test_stats),
		TEST(test_backing_none),
	};

	return RUN_TESTS(tests);
}
