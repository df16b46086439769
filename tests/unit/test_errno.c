// SPDX-License-Identifier: MIT
/*
 * test_errno.c - every error return gmem.h names, and that a failing call
 * changes nothing: the pool-wide and per-file statistics, the attribute
 * and poison sets and gmem_check() are compared before and after.
 *
 * Order of checks (TRACE.md "Finer rules"): offsets and lengths (EINVAL)
 * before the command's own rules.
 */
#include "harness.h"
#include "internal.h"

#define PG(n) ((uint64_t)(n) * K4)

/* Everything a failing call must leave as it was. */
struct snap {
	struct gmem_stats pool, file;
	uint64_t shared_hash, poison_hash;
};

static uint64_t rs_hash(const struct rangeset *rs)
{
	uint64_t from = 0, s, e, h = 1469598103934665603ULL;

	while (rs_next(rs, from, &s, &e)) {
		h = (h ^ s) * 1099511628211ULL;
		h = (h ^ e) * 1099511628211ULL;
		from = e;
	}
	return h;
}

static bool snap_take(struct gmem_pool *pool, struct gmem_file *file,
		      struct snap *sn)
{
	struct gfile *f = to_file(file);

	memset(sn, 0, sizeof(*sn));
	STATS(pool, NULL, &sn->pool);
	if (file && !f->closed) {
		STATS(pool, file, &sn->file);
		sn->shared_hash = rs_hash(&f->shared);
		sn->poison_hash = rs_hash(&f->poison);
	}
	return true;
}

/*
 * The state equals @before, except that the counter @field (a struct
 * gmem_stats member) must have grown by @by.
 */
#define CHECK_UNCHANGED_BUT(P_, F_, B_, FIELD_, BY_)			\
	do {								\
		struct snap now_;					\
		if (!snap_take((P_), (F_), &now_))			\
			return false;					\
		CHECK_EQ(now_.pool.FIELD_, (B_)->pool.FIELD_ + (BY_));	\
		now_.pool.FIELD_ = (B_)->pool.FIELD_;			\
		if (F_) {						\
			CHECK_EQ(now_.file.FIELD_,			\
				 (B_)->file.FIELD_ + (BY_));		\
			now_.file.FIELD_ = (B_)->file.FIELD_;		\
		}							\
		CHECK(memcmp(&now_.pool, &(B_)->pool,			\
			     sizeof(now_.pool)) == 0);			\
		CHECK(memcmp(&now_.file, &(B_)->file,			\
			     sizeof(now_.file)) == 0);			\
		CHECK_EQ(now_.shared_hash, (B_)->shared_hash);		\
		CHECK_EQ(now_.poison_hash, (B_)->poison_hash);		\
		CHECK_INVARIANTS(P_);					\
	} while (0)

#define CHECK_UNCHANGED(P_, F_, B_) CHECK_UNCHANGED_BUT(P_, F_, B_, pins, 0)

/* gmem_pool_create(): -EINVAL for a bad size or backing. */
static bool test_pool_create_einval(void)
{
	struct gmem_pool *pool = (struct gmem_pool *)&pool;
	const uint64_t sizes[] = { 0, 4096, 1ULL << 20, 3ULL << 20,
				   GMEM_2M * 2, GMEM_1G * 2, GMEM_1G + GMEM_2M };

	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		CHECK_EQ(gmem_pool_create(sizes[i], 1, GMEM_BACKING_MEMFD,
					  &pool), -EINVAL);
	CHECK_EQ(gmem_pool_create(MB2, 1, (enum gmem_backing)4, &pool),
		 -EINVAL);
	CHECK_EQ(gmem_pool_create(MB2, 1, (enum gmem_backing)-1, &pool),
		 -EINVAL);
	CHECK_EQ(gmem_pool_create(MB2, 1, GMEM_BACKING_MEMFD, NULL), -EINVAL);
	CHECK(pool == (struct gmem_pool *)&pool);	/* untouched */
	return true;
}

/* gmem_file_create(): -EINVAL (size, policy, flags), -ENOMEM. */
static bool test_file_create_einval_enomem(void)
{
	struct gmem_pool *pool, *pool1g;
	struct gmem_file *f = (struct gmem_file *)&f, *g;
	struct snap sn;

	CHECK_EQ(testpool_create(MB2, 2, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(testpool_create(GB1, 1, GMEM_BACKING_MEMFD, &pool1g), 0);
	if (!snap_take(pool, NULL, &sn))
		return false;
	CHECK_EQ(gmem_file_create(pool, 0, GMEM_POLICY_A, 0, &f), -EINVAL);
	CHECK_EQ(gmem_file_create(pool, MB2 + K4, GMEM_POLICY_A, 0, &f),
		 -EINVAL);
	CHECK_EQ(gmem_file_create(pool, MB2 / 2, GMEM_POLICY_4K, 0, &f),
		 -EINVAL);
	CHECK_EQ(gmem_file_create(pool1g, MB2, GMEM_POLICY_B_LAZY, 0, &f),
		 -EINVAL);
	CHECK_EQ(gmem_file_create(pool, MB2, (enum gmem_policy)6, 0, &f),
		 -EINVAL);
	CHECK_EQ(gmem_file_create(pool, MB2, (enum gmem_policy)-1, 0, &f),
		 -EINVAL);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_A, 1U << 1, &f),
		 -EINVAL);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_A, 1U << 31, &f),
		 -EINVAL);
	CHECK_EQ(gmem_file_create(NULL, MB2, GMEM_POLICY_A, 0, &f), -EINVAL);
	/* -ENOMEM: more than the pool's unreserved free pages */
	CHECK_EQ(gmem_file_create(pool, 3 * MB2, GMEM_POLICY_A, 0, &f),
		 -ENOMEM);
	CHECK(f == (struct gmem_file *)&f);
	CHECK_UNCHANGED(pool, NULL, &sn);
	CHECK_EQ(gmem_file_create(pool, 2 * MB2, GMEM_POLICY_A, 0, &g), 0);
	if (!snap_take(pool, NULL, &sn))
		return false;
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, 0, &f),
		 -ENOMEM);
	CHECK_UNCHANGED(pool, NULL, &sn);
	CHECK_EQ(gmem_file_close(g), 0);
	gmem_pool_destroy(pool1g);
	FINISH(pool);
}

/* A file with some state to disturb: pages shared, mapped, pinned. */
struct fixture {
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm, *stranger;
	uint64_t pin_id;
};

static bool fixture_up(struct fixture *x, uint64_t psize,
		       enum gmem_policy pol)
{
	if (!setup(psize, 2, pol, 2 * psize, 0, &x->pool, &x->f, &x->mm))
		return false;
	CHECK_EQ(gmem_mm_create(x->pool, NULL, &x->stranger), 0);
	CHECK_EQ(gmem_convert(x->f, 0, PG(16), GMEM_SHARED, 0, 0, NULL), 0);
	CHECK_EQ(gmem_host_write(x->mm, x->f, PG(1), 0x11), 0);
	CHECK_EQ(gmem_pin(x->mm, x->f, PG(2), PG(1), 0, &x->pin_id, NULL), 0);
	CHECK_EQ(gmem_guest_access(x->f, PG(20), 0, 0), 0);
	return true;
}

static bool fixture_down(struct fixture *x)
{
	CHECK_EQ(gmem_unpin(x->pool, x->pin_id), 0);
	CHECK_EQ(gmem_file_close(x->f), 0);
	FINISH(x->pool);
}

/* Offsets and lengths: 4K aligned, inside the file, non-empty. */
static bool test_einval_ranges(void)
{
	struct fixture x;
	struct snap sn;
	uint64_t id = 0, at = 0x77;
	const uint64_t size = 2 * MB2;
	const uint64_t bad[][2] = {
		{ 0x800, K4 },		/* unaligned offset */
		{ 0, 0x800 },		/* unaligned length */
		{ K4, K4 + 1 },
		{ 0, 0 },		/* empty */
		{ size, K4 },		/* at the end */
		{ size - K4, 2 * K4 },	/* past the end */
		{ 0, size + K4 },
		{ UINT64_MAX - 4095, K4 },		/* huge offset */
		{ K4, UINT64_MAX - 4095 },		/* wrapping length */
		{ size - K4, UINT64_MAX - 4095 },
	};

	if (!fixture_up(&x, MB2, GMEM_POLICY_B_LAZY) ||
	    !snap_take(x.pool, x.f, &sn))
		return false;
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t off = bad[i][0], len = bad[i][1];

		/* a pin is a host access: an aligned range that runs past
		 * the end is the mapping's EFAULT, not EINVAL */
		int pin_err = len && !(off % K4) && !(len % K4) ? -EFAULT :
								  -EINVAL;

		CHECK_EQ(gmem_pin(x.mm, x.f, off, len, 0, &id, NULL), pin_err);
		CHECK_EQ(gmem_convert(x.f, off, len, GMEM_PRIVATE, 0, 0, &at),
			 -EINVAL);
		CHECK_EQ(gmem_convert(x.f, off, len, GMEM_SHARED, 0, 0, &at),
			 -EINVAL);
		CHECK_EQ(gmem_punch(x.f, off, len), -EINVAL);
		CHECK_EQ(gmem_iommu_map(x.f, off, len, &at), -EINVAL);
		/* EINVAL comes before the command's own rules */
		CHECK_EQ(gmem_pin(x.stranger, x.f, off, len, 0, &id, NULL),
			 pin_err);
		CHECK_EQ(gmem_pin(x.mm, x.f, off, len,
				  GMEM_PIN_EXCLUSIVE | GMEM_PIN_LONGTERM, &id,
				  NULL),
			 /* page 2, pinned, comes before the end */
			 pin_err == -EFAULT && off <= PG(2) &&
			 len > PG(2) - off ? -EBUSY : pin_err);
	}
	CHECK_EQ(gmem_poison(x.f, 0x800), -EINVAL);
	CHECK_EQ(gmem_poison(x.f, size), -EINVAL);
	CHECK_EQ(gmem_poison(x.f, UINT64_MAX & ~0xfffULL), -EINVAL);
	/* private pages in an invalid range: still EINVAL */
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(100) + 1, K4, 0, &id, NULL), -EINVAL);
	CHECK_EQ(at, 0x77);
	CHECK_UNCHANGED(x.pool, x.f, &sn);
	return fixture_down(&x);
}

/* Unknown flags and attributes. */
static bool test_einval_flags(void)
{
	struct fixture x;
	struct snap sn;
	uint64_t id;

	if (!fixture_up(&x, MB2, GMEM_POLICY_4K) ||
	    !snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_pin(x.mm, x.f, 0, K4, 1U << 2, &id, NULL), -EINVAL);
	CHECK_EQ(gmem_convert(x.f, 0, K4, (enum gmem_attr)2, 0, 0, NULL),
		 -EINVAL);
	CHECK_EQ(gmem_convert(x.f, 0, K4, GMEM_PRIVATE, 1U << 1, 0, NULL),
		 -EINVAL);
	CHECK_EQ(gmem_fault(x.mm, x.f, 0, 1U << 1), -EINVAL);
	CHECK_EQ(gmem_guest_access(x.f, 0, 0, 1U << 3), -EINVAL);
	CHECK_UNCHANGED(x.pool, x.f, &sn);
	return fixture_down(&x);
}

/* -EBADF on every call through a closed file's handle. */
/* The merge-delay and compact calls: NULL, the wrong policy, closed. */
static bool test_merge_delay_errno(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f, *g;
	struct gmem_mm *mm;
	struct snap sn;

	if (!setup(MB2, 2, GMEM_POLICY_B_ADAPTIVE, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, 0, &g), 0);
	if (!snap_take(pool, NULL, &sn))
		return false;
	CHECK_EQ(gmem_file_set_merge_delay(NULL, 1), -EINVAL);
	CHECK_EQ(gmem_file_set_merge_delay(g, 1), -EINVAL);
	CHECK_EQ(gmem_file_compact(NULL), -EINVAL);
	CHECK_EQ(gmem_file_compact(g), 0);
	CHECK_EQ(gmem_file_compact(f), 0);
	CHECK_EQ(gmem_file_set_merge_delay(f, 0), 0);
	CHECK_EQ(gmem_file_set_merge_delay(f, 1000000), 0);
	CHECK_UNCHANGED(pool, NULL, &sn);
	CHECK_EQ(gmem_file_close(f), 0);
	CHECK_EQ(gmem_file_set_merge_delay(f, 1), -EBADF);
	CHECK_EQ(gmem_file_compact(f), -EBADF);
	CHECK_EQ(gmem_file_close(g), 0);
	FINISH(pool);
}

static bool test_ebadf_after_close(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm, *mm2;
	struct gmem_stats s;
	struct snap sn;
	uint64_t id, at;
	uint8_t v;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm2), 0);
	CHECK_EQ(gmem_host_write(mm, f, 0, 1), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	if (!snap_take(pool, NULL, &sn))
		return false;
	CHECK_EQ(gmem_file_close(f), -EBADF);
	CHECK_EQ(gmem_mmap(mm2, f), -EBADF);
	CHECK_EQ(gmem_fault(mm, f, 0, 0), -EBADF);
	CHECK_EQ(gmem_host_read(mm, f, 0, &v), -EBADF);
	CHECK_EQ(gmem_host_write(mm, f, 0, 1), -EBADF);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), -EBADF);
	CHECK_EQ(gmem_convert(f, 0, K4, GMEM_PRIVATE, 0, 0, &at), -EBADF);
	CHECK_EQ(gmem_convert(f, 0, K4, GMEM_SHARED, 0, 0, &at), -EBADF);
	CHECK_EQ(gmem_punch(f, 0, K4), -EBADF);
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), -EBADF);
	CHECK_EQ(gmem_guest_read(f, 0, &v), -EBADF);
	CHECK_EQ(gmem_guest_write(f, 0, 1), -EBADF);
	CHECK_EQ(gmem_iommu_map(f, 0, K4, &at), -EBADF);
	CHECK_EQ(gmem_poison(f, 0), -EBADF);
	CHECK_EQ(gmem_stats(pool, f, &s), -EBADF);
	CHECK_EQ(gmem_file_compact(f), -EBADF);
	/* closed: EBADF comes first, also for a file that is not
	 * b-adaptive */
	CHECK_EQ(gmem_file_set_merge_delay(f, 1), -EBADF);
	/* a fork of an mm that mapped a closed file maps nothing of it */
	struct gmem_mm *child;

	CHECK_EQ(gmem_mm_create(pool, mm, &child), 0);
	CHECK_EQ(gmem_fault(child, f, 0, 0), -EBADF);
	CHECK_UNCHANGED(pool, NULL, &sn);
	FINISH(pool);
}

/*
 * -EFAULT: an mm without a mapping of the file; a pin of a private page
 * (all or nothing: nothing mapped or allocated for the pages before it);
 * an IOMMU map of a private page (at error_offset).  Host faults on private
 * pages and past the end are SIGBUS, not errors; they change nothing.
 */
static bool check_efault(enum gmem_policy pol)
{
	struct fixture x;
	struct snap sn;
	uint64_t id, at = 0;
	uint8_t v;

	if (!fixture_up(&x, MB2, pol) || !snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_fault(x.stranger, x.f, PG(1), 0), -EFAULT);
	CHECK_EQ(gmem_host_read(x.stranger, x.f, PG(1), &v), -EFAULT);
	CHECK_EQ(gmem_host_write(x.stranger, x.f, PG(1), 1), -EFAULT);
	CHECK_EQ(gmem_pin(x.stranger, x.f, PG(1), K4, 0, &id, NULL), -EFAULT);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(16), K4, 0, &id, NULL), -EFAULT);
	/* shared pages 4..15 then private 16: nothing of 4..15 happens */
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(4), PG(16), 0, &id, NULL), -EFAULT);
	/* and across into the unallocated second huge page */
	CHECK_EQ(gmem_convert(x.f, MB2, PG(4), GMEM_SHARED, 0, 0, NULL), 0);
	if (!snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_pin(x.mm, x.f, MB2, PG(5), GMEM_PIN_EXCLUSIVE, &id,
			  NULL), -EFAULT);
	CHECK_EQ(gmem_iommu_map(x.f, MB2, PG(5), &at), -EFAULT);
	CHECK_EQ(at, MB2 + PG(4));
	CHECK_EQ(gmem_iommu_map(x.f, PG(8), PG(16), &at), -EFAULT);
	CHECK_EQ(at, PG(16));
	/* SIGBUS outcomes */
	CHECK_EQ(gmem_fault(x.mm, x.f, PG(16), 0), GMEM_SIGBUS);
	CHECK_EQ(gmem_host_read(x.mm, x.f, MB2 + PG(4), &v), GMEM_SIGBUS);
	CHECK_EQ(gmem_fault(x.mm, x.f, 2 * MB2, 0), GMEM_SIGBUS);
	CHECK_EQ(gmem_host_write(x.mm, x.f, UINT64_MAX, 1), GMEM_SIGBUS);
	CHECK_EQ(gmem_guest_access(x.f, 2 * MB2, 0, 0), GMEM_GUEST_FAULT);
	CHECK_EQ(gmem_guest_read(x.f, 2 * MB2 + 5, &v), GMEM_GUEST_FAULT);
	CHECK_UNCHANGED(x.pool, x.f, &sn);
	return fixture_down(&x);
}

static bool test_efault(void)
{
	return check_efault(GMEM_POLICY_4K) && check_efault(GMEM_POLICY_A) &&
	       check_efault(GMEM_POLICY_B_EAGER) &&
	       check_efault(GMEM_POLICY_B_LAZY);
}

/* -EHWPOISON: pins and IOMMU maps over a poisoned page; guest HWPOISON. */
static bool test_ehwpoison(void)
{
	struct fixture x;
	struct snap sn;
	uint64_t id, at = 0;
	uint8_t v;

	if (!fixture_up(&x, MB2, GMEM_POLICY_B_EAGER))
		return false;
	CHECK_EQ(gmem_poison(x.f, PG(6)), 0);
	CHECK_EQ(gmem_poison(x.f, PG(6)), 0);		/* twice: fine */
	if (!snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(6), K4, 0, &id, NULL), -EHWPOISON);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(3), PG(6), GMEM_PIN_LONGTERM, &id,
			  NULL), -EHWPOISON);
	CHECK_EQ(gmem_iommu_map(x.f, PG(4), PG(4), &at), -EHWPOISON);
	CHECK_EQ(at, PG(6));
	CHECK_EQ(gmem_guest_access(x.f, PG(6), 0, 0), GMEM_GUEST_HWPOISON);
	CHECK_EQ(gmem_guest_write(x.f, PG(6) + 3, 1), GMEM_GUEST_HWPOISON);
	CHECK_EQ(gmem_host_read(x.mm, x.f, PG(6), &v), GMEM_SIGBUS);
	CHECK_UNCHANGED(x.pool, x.f, &sn);
	return fixture_down(&x);
}

/* -EOPNOTSUPP: long-term pins under policy a; counted, nothing else. */
static bool test_eopnotsupp(void)
{
	struct fixture x;
	struct snap sn;
	uint64_t id;

	if (!fixture_up(&x, MB2, GMEM_POLICY_A) ||
	    !snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(4), PG(2), GMEM_PIN_LONGTERM, &id,
			  NULL), -EOPNOTSUPP);
	CHECK_UNCHANGED_BUT(x.pool, x.f, &sn, eopnotsupp, 1);
	return fixture_down(&x);
}

/* -EBUSY: an exclusive pin against any pin, any pin against it. */
static bool check_ebusy_exclusive(enum gmem_policy pol)
{
	struct fixture x;
	struct snap sn;
	uint64_t ex, id, id2;

	if (!fixture_up(&x, MB2, pol) || !snap_take(x.pool, x.f, &sn))
		return false;
	/* x.pin_id holds page 2 */
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(2), K4, GMEM_PIN_EXCLUSIVE, &id, NULL),
		 -EBUSY);
	CHECK_EQ(gmem_pin(x.mm, x.f, 0, PG(4), GMEM_PIN_EXCLUSIVE, &id, NULL),
		 -EBUSY);
	CHECK_UNCHANGED(x.pool, x.f, &sn);

	CHECK_EQ(gmem_pin(x.mm, x.f, PG(5), PG(2), GMEM_PIN_EXCLUSIVE, &ex,
			  NULL), 0);
	if (!snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(6), K4, 0, &id, NULL), -EBUSY);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(3), PG(3), 0, &id, NULL), -EBUSY);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(5), K4, GMEM_PIN_EXCLUSIVE, &id, NULL),
		 -EBUSY);
	if (pol != GMEM_POLICY_A)
		CHECK_EQ(gmem_pin(x.mm, x.f, PG(5), K4, GMEM_PIN_LONGTERM, &id,
				  NULL), -EBUSY);
	CHECK_UNCHANGED(x.pool, x.f, &sn);
	/* pages next to it are fine */
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(4), K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(7), K4, GMEM_PIN_EXCLUSIVE, &id2,
			  NULL), 0);
	CHECK_EQ(gmem_unpin(x.pool, id2), 0);
	CHECK_EQ(gmem_unpin(x.pool, id), 0);
	CHECK_EQ(gmem_unpin(x.pool, ex), 0);
	/* once it is gone, every pin works again */
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(5), PG(2), 0, &id, NULL), 0);
	CHECK_EQ(gmem_unpin(x.pool, id), 0);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(5), PG(2), GMEM_PIN_EXCLUSIVE, &id,
			  NULL), 0);
	CHECK_EQ(gmem_unpin(x.pool, id), 0);
	return fixture_down(&x);
}

static bool test_ebusy_exclusive(void)
{
	return check_ebusy_exclusive(GMEM_POLICY_4K) &&
	       check_ebusy_exclusive(GMEM_POLICY_A) &&
	       check_ebusy_exclusive(GMEM_POLICY_B_LAZY);
}

/* -EEXIST: mapping a file twice in one mm (a fork's copy included). */
static bool test_eexist_mmap(void)
{
	struct fixture x;
	struct snap sn;
	struct gmem_mm *child;

	if (!fixture_up(&x, MB2, GMEM_POLICY_B_LAZY))
		return false;
	CHECK_EQ(gmem_mm_create(x.pool, x.mm, &child), 0);
	if (!snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_mmap(x.mm, x.f), -EEXIST);
	CHECK_EQ(gmem_mmap(child, x.f), -EEXIST);
	CHECK_UNCHANGED(x.pool, x.f, &sn);
	CHECK_EQ(gmem_mmap(x.stranger, x.f), 0);
	CHECK_EQ(gmem_mmap(x.stranger, x.f), -EEXIST);
	return fixture_down(&x);
}

/* -ENOENT: unpin of an id not held now; ids are never reused. */
static bool test_enoent_unpin(void)
{
	struct fixture x;
	struct snap sn;
	uint64_t id1, id2;

	if (!fixture_up(&x, MB2, GMEM_POLICY_B_EAGER))
		return false;
	CHECK_EQ(gmem_fault(x.mm, x.f, PG(9), 0), 0);	/* the pins' PTE */
	if (!snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_unpin(x.pool, 0), -ENOENT);
	CHECK_EQ(gmem_unpin(x.pool, x.pin_id + 1000), -ENOENT);
	CHECK_EQ(gmem_unpin(x.pool, UINT64_MAX), -ENOENT);
	CHECK_UNCHANGED(x.pool, x.f, &sn);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(9), K4, 0, &id1, NULL), 0);
	CHECK_EQ(gmem_unpin(x.pool, id1), 0);
	CHECK_EQ(gmem_unpin(x.pool, id1), -ENOENT);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(9), K4, 0, &id2, NULL), 0);
	CHECK(id2 != id1);
	CHECK(id2 != x.pin_id);
	CHECK_EQ(gmem_unpin(x.pool, id2), 0);
	CHECK_UNCHANGED(x.pool, x.f, &sn);
	return fixture_down(&x);
}

/*
 * A failing conversion changes only what it may: zapped PTEs and its
 * failure counter (EAGAIN / EBUSY).
 */
static bool test_convert_failure_counters(void)
{
	struct fixture x;
	struct snap sn;
	uint64_t lt, at = 0;

	if (!fixture_up(&x, MB2, GMEM_POLICY_B_EAGER))
		return false;
	/* drop the PTEs of the drain set first, so only counters move */
	CHECK_EQ(gmem_convert(x.f, PG(2), PG(1), GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	CHECK_EQ(gmem_convert(x.f, PG(3), PG(1), GMEM_PRIVATE, 0, 0, NULL), 0);
	if (!snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_convert(x.f, 0, PG(3), GMEM_PRIVATE, 0, 0, &at), -EAGAIN);
	CHECK_EQ(at, PG(2));
	/* page 1's PTE went with the drain set */
	sn.pool.host_ptes--;
	sn.file.host_ptes--;
	sn.pool.zaps++;
	sn.file.zaps++;
	sn.pool.tlb_flushes++;	/* one mm lost an entry */
	sn.file.tlb_flushes++;
	CHECK_UNCHANGED_BUT(x.pool, x.f, &sn, eagain, 1);
	CHECK_EQ(gmem_pin(x.mm, x.f, PG(8), K4, GMEM_PIN_LONGTERM, &lt, NULL),
		 0);
	CHECK_EQ(gmem_convert(x.f, PG(8), K4, GMEM_PRIVATE, 0, 0, NULL), -EBUSY);
	if (!snap_take(x.pool, x.f, &sn))
		return false;
	CHECK_EQ(gmem_convert(x.f, PG(4), PG(8), GMEM_PRIVATE, 0, 50, &at),
		 -EBUSY);
	CHECK_EQ(at, PG(8));
	CHECK_UNCHANGED_BUT(x.pool, x.f, &sn, ebusy, 1);
	CHECK_EQ(gmem_unpin(x.pool, lt), 0);
	return fixture_down(&x);
}

/* Statistics by name, errno names. */
static bool test_stat_keys_and_names(void)
{
	struct gmem_pool *pool;
	struct gmem_stats s;
	uint64_t v = 12345;
	unsigned int n = 0;

	CHECK_EQ(testpool_create(MB2, 3, GMEM_BACKING_MEMFD, &pool), 0);
	STATS(pool, NULL, &s);
	CHECK_EQ(gmem_stat_get(&s, "no_such_key", &v), -ENOENT);
	CHECK_EQ(v, 12345);
	CHECK_EQ(gmem_stat_get(&s, "pool_total", &v), 0);
	CHECK_EQ(v, 3);
	for (const char *const *k = gmem_stat_keys; *k; k++, n++)
		CHECK_EQ(gmem_stat_get(&s, *k, &v), 0);
	CHECK(n >= gmem_stat_nr_listed);
	CHECK_EQ(gmem_stat_nr_listed, 23);
	CHECK(strcmp(gmem_errno_name(-EAGAIN), "EAGAIN") == 0);
	CHECK(strcmp(gmem_errno_name(-EHWPOISON), "EHWPOISON") == 0);
	CHECK(strcmp(gmem_errno_name(-EOPNOTSUPP), "EOPNOTSUPP") == 0);
	FINISH(pool);
}

/* gmem_check() itself: -EUCLEAN with a reason when an invariant breaks. */
static bool test_check_detects(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gfolio *fo;
	char why[256] = "";

	if (!setup(MB2, 1, GMEM_POLICY_4K, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	CHECK_INVARIANTS(pool);
	fo = folio_lookup(to_file(f), 0);
	CHECK(fo);
	atomic_fetch_add(&fo->refcount, 1);	/* a leaked reference */
	CHECK_EQ(gmem_check(pool, why, sizeof(why)), -EUCLEAN);
	CHECK(why[0] != '\0');
	atomic_fetch_sub(&fo->refcount, 1);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_pool_create_einval),
		TEST(test_file_create_einval_enomem),
		TEST(test_einval_ranges),
		TEST(test_einval_flags),
		TEST(test_ebadf_after_close),
		TEST(test_merge_delay_errno),
		TEST(test_efault),
		TEST(test_ehwpoison),
		TEST(test_eopnotsupp),
		TEST(test_ebusy_exclusive),
		TEST(test_eexist_mmap),
		TEST(test_enoent_unpin),
		TEST(test_convert_failure_counters),
		TEST(test_stat_keys_and_names),
		TEST(test_check_detects),
	};

	return RUN_TESTS(tests);
}
