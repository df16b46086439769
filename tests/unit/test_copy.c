// SPDX-License-Identifier: MIT
/*
 * test_copy.c - gmem_host_copy_out() / gmem_host_copy_in(): buffers of
 * any length and offset across pages and huge pages, a copy that stops at
 * the first page it cannot access (private, past the end) with the bytes
 * before it copied and nothing after it touched, and the errors.
 */
#include "harness.h"

#define PG(n) ((uint64_t)(n) * K4)

static void fill(uint8_t *b, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i * 7);
}

/* In and out again across three pages and a huge page boundary. */
static bool test_copy_round_trip(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	static uint8_t in[PG(3) + 123], out[sizeof(in)];
	uint64_t off = MB2 - PG(1) - 77;	/* crosses into the second */
	size_t done = 1;
	uint8_t b;

	if (!setup(MB2, 2, GMEM_POLICY_B_LAZY, 2 * MB2, SHARED, &pool, &f,
		   &mm))
		return false;
	fill(in, sizeof(in), 3);
	CHECK_EQ(gmem_host_copy_in(mm, f, off, in, sizeof(in), &done), 0);
	CHECK_EQ(done, sizeof(in));
	memset(out, 0, sizeof(out));
	CHECK_EQ(gmem_host_copy_out(mm, f, off, out, sizeof(out), &done), 0);
	CHECK_EQ(done, sizeof(out));
	CHECK(!memcmp(in, out, sizeof(in)));
	/* the same bytes one by one, and through the guest */
	CHECK_EQ(gmem_host_read(mm, f, off + 5000, &b), 0);
	CHECK_EQ(b, in[5000]);
	CHECK_EQ(gmem_guest_read(f, off + 9000, &b), 0);
	CHECK_EQ(b, in[9000]);
	/* a length of 0 copies nothing */
	CHECK_EQ(gmem_host_copy_out(mm, f, 0, NULL, 0, &done), 0);
	CHECK_EQ(done, 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* A private page stops the copy there, both ways; nothing after it. */
static bool test_copy_stops_at_private(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	static uint8_t in[PG(3)], out[PG(3)];
	uint64_t off = PG(1) + 100;
	size_t done = 99;
	uint8_t b;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	fill(in, sizeof(in), 11);
	CHECK_EQ(gmem_host_copy_in(mm, f, off, in, sizeof(in), &done), 0);
	CHECK_EQ(gmem_host_write(mm, f, PG(3) + 10, 0xee), 0);
	CHECK_EQ(gmem_convert(f, PG(3), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	/* out: pages 1 (from +100) and 2, then page 3 is private */
	memset(out, 0xcc, sizeof(out));
	CHECK_EQ(gmem_host_copy_out(mm, f, off, out, sizeof(out), &done),
		 GMEM_SIGBUS);
	CHECK_EQ(done, PG(3) - off);
	CHECK(!memcmp(out, in, done));
	for (size_t i = done; i < sizeof(out); i++)
		CHECK_EQ(out[i], 0xcc);
	/* in: the same stop; the private page keeps its bytes */
	fill(in, sizeof(in), 77);
	CHECK_EQ(gmem_host_copy_in(mm, f, off, in, sizeof(in), &done),
		 GMEM_SIGBUS);
	CHECK_EQ(done, PG(3) - off);
	CHECK_EQ(gmem_guest_read(f, PG(3) + 10, &b), 0);
	CHECK_EQ(b, 0xee);
	CHECK_EQ(gmem_host_read(mm, f, off + done - 1, &b), 0);
	CHECK_EQ(b, in[done - 1]);
	/* a private first page: nothing copied */
	CHECK_EQ(gmem_host_copy_out(mm, f, PG(3) + 1, out, 10, &done),
		 GMEM_SIGBUS);
	CHECK_EQ(done, 0);
	CHECK_EQ(gmem_check(pool, NULL, 0), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* Past the end of the file: SIGBUS there, the bytes before it copied. */
static bool test_copy_past_end(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	static uint8_t out[PG(2)];
	size_t done;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_host_copy_out(mm, f, MB2 - 300, out, sizeof(out), &done),
		 GMEM_SIGBUS);
	CHECK_EQ(done, 300);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_copy_errors(void)
{
	struct gmem_pool *pool, *none;
	struct gmem_file *f, *fn;
	struct gmem_mm *mm, *mm2, *mmn;
	uint8_t buf[16];
	size_t done = 5;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_host_copy_out(NULL, f, 0, buf, 1, &done), -EINVAL);
	CHECK_EQ(done, 0);
	CHECK_EQ(gmem_host_copy_out(mm, NULL, 0, buf, 1, NULL), -EINVAL);
	CHECK_EQ(gmem_host_copy_in(mm, f, 0, NULL, 1, NULL), -EINVAL);
	CHECK_EQ(gmem_host_copy_out(mm, f, UINT64_MAX - 2, buf, 8, NULL),
		 -EINVAL);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm2), 0);
	done = 5;
	CHECK_EQ(gmem_host_copy_in(mm2, f, 0, buf, sizeof(buf), &done),
		 -EFAULT);
	CHECK_EQ(done, 0);
	/* a pool without memory has no bytes to copy */
	CHECK_EQ(gmem_pool_create(MB2, 1, GMEM_BACKING_NONE, &none), 0);
	CHECK_EQ(gmem_file_create(none, MB2, GMEM_POLICY_B_LAZY, SHARED, &fn),
		 0);
	CHECK_EQ(gmem_mm_create(none, NULL, &mmn), 0);
	CHECK_EQ(gmem_mmap(mmn, fn), 0);
	CHECK_EQ(gmem_host_copy_out(mmn, fn, 0, buf, sizeof(buf), NULL),
		 -ENXIO);
	CHECK_EQ(gmem_fault(mmn, fn, 0, 0), 0);	/* mapped: same answer */
	CHECK_EQ(gmem_host_copy_out(mmn, fn, 0, buf, sizeof(buf), NULL),
		 -ENXIO);
	/* two pools */
	CHECK_EQ(gmem_host_copy_out(mmn, f, 0, buf, 1, NULL), -EINVAL);
	CHECK_EQ(gmem_file_close(fn), 0);
	gmem_pool_destroy(none);
	CHECK_EQ(gmem_file_close(f), 0);
	CHECK_EQ(gmem_host_copy_out(mm, f, 0, buf, 1, NULL), -EBADF);
	FINISH(pool);
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_copy_round_trip),
		TEST(test_copy_stops_at_private),
		TEST(test_copy_past_end),
		TEST(test_copy_errors),
	};

	return RUN_TESTS(tests);
}
