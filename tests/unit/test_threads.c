// SPDX-License-Identifier: MIT
/*
 * test_threads.c - the conversion protocol under real threads:
 *
 * - a conversion really waits for a short-term pin (and returns once it
 *   goes), or gives up with EAGAIN at its timeout;
 * - while a conversion holds the invalidate lock (waiting for a pin), host
 *   faults and pins on the file block until it is done; unpin does not;
 * - a stress run of fault/pin/unpin against conversions back and forth on
 *   one page: no pin ever succeeds on a private page, and while a pin is
 *   held no conversion to private can succeed.
 *
 * Times are only bounded from below: a loaded machine may be slow.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>

#include "harness.h"
#include "internal.h"

#define PG(n) ((uint64_t)(n) * K4)

/* ------------------------------------------------- one pin, one waiter */

struct holder {
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t off;
	unsigned int delay_ms;
	atomic_int pinned;		/* 1 once the pin is held, -1 on error */
	uint64_t t_unpin;		/* now_ms() just before the unpin */
	int unpin_ret;
};

/* Pin a page, let the main thread know, sleep, unpin. */
static void *holder_main(void *arg)
{
	struct holder *h = arg;
	uint64_t id;

	if (gmem_pin(h->mm, h->f, h->off, K4, 0, &id, NULL)) {
		atomic_store(&h->pinned, -1);
		return NULL;
	}
	atomic_store(&h->pinned, 1);
	sleep_ms(h->delay_ms);
	h->t_unpin = now_ms();
	h->unpin_ret = gmem_unpin(h->pool, id);
	return NULL;
}

/*
 * Spin until @flag is non-zero or @ms pass; returns the flag.  Yields
 * rather than sleeps, so the caller reacts at once.
 */
static int wait_flag(atomic_int *flag, unsigned int ms)
{
	uint64_t end = now_ms() + ms;
	int v;

	while (!(v = atomic_load(flag)) && now_ms() < end)
		sched_yield();
	return v;
}

/*
 * Thread A holds a short-term pin on @pin_off and drops it after ~50 ms;
 * the conversion of @conv_off (whose drain set holds the pin) waits for
 * it and succeeds.
 */
static bool check_waits(enum gmem_policy pol, uint64_t pin_off,
			uint64_t conv_off, int timeout_ms)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	struct holder h = { 0 };
	pthread_t t;
	uint64_t t0, t1, at = 0, id;
	uint8_t v;
	int r, pinned;

	if (!setup(MB2, 1, pol, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_host_write(mm, f, conv_off, 0x5c), 0);
	h.pool = pool;
	h.f = f;
	h.mm = mm;
	h.off = pin_off;
	h.delay_ms = 50;
	CHECK_EQ(pthread_create(&t, NULL, holder_main, &h), 0);
	pinned = wait_flag(&h.pinned, 5000);
	t0 = now_ms();
	r = gmem_convert(f, conv_off, K4, GMEM_PRIVATE, 0, timeout_ms, &at);
	t1 = now_ms();
	pthread_join(t, NULL);

	CHECK_EQ(pinned, 1);
	CHECK_EQ(r, 0);
	CHECK_EQ(h.unpin_ret, 0);
	CHECK(t1 - t0 >= 40);			/* it did wait */
	CHECK(t1 >= h.t_unpin);			/* for the unpin */
	STATS(pool, f, &s);
	CHECK(s.pin_wait_ns > 0);		/* counted as a wait */
	CHECK_EQ(s.eagain, 0);
	CHECK_EQ(s.conversions, 1);
	/* the page is private now */
	CHECK_EQ(gmem_host_read(mm, f, conv_off, &v), GMEM_SIGBUS);
	CHECK_EQ(gmem_pin(mm, f, conv_off, K4, 0, &id, NULL), -EFAULT);
	CHECK_EQ(gmem_guest_read(f, conv_off, &v), 0);
	CHECK_EQ(v, 0x5c);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_convert_waits_for_unpin(void)
{
	return check_waits(GMEM_POLICY_4K, 0, 0, 5000) &&
	       check_waits(GMEM_POLICY_B_EAGER, PG(3), PG(3), -1) &&
	       /* intact huge folios: a pin elsewhere in it is waited for */
	       check_waits(GMEM_POLICY_A, PG(100), PG(7), 5000) &&
	       check_waits(GMEM_POLICY_B_LAZY, PG(100), PG(7), -1);
}

/* With a 100 ms timeout and no unpin: -EAGAIN after the timeout. */
static bool check_times_out(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id, at = 0, t0, t1;
	uint8_t v;

	if (!setup(MB2, 1, pol, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_host_write(mm, f, PG(9), 0x99), 0);
	CHECK_EQ(gmem_pin(mm, f, PG(9), K4, 0, &id, NULL), 0);
	t0 = now_ms();
	CHECK_EQ(gmem_convert(f, PG(8), PG(2), GMEM_PRIVATE, 0, 100, &at),
		 -EAGAIN);
	t1 = now_ms();
	CHECK(t1 - t0 >= 90);
	CHECK_EQ(at, pol == GMEM_POLICY_A ? PG(8) : PG(9));
	STATS(pool, f, &s);
	CHECK_EQ(s.eagain, 1);
	CHECK_EQ(s.conversions, 0);
	CHECK(s.pin_wait_ns >= 90ULL * 1000000);
	/* nothing changed */
	CHECK_EQ(gmem_host_read(mm, f, PG(9), &v), 0);
	CHECK_EQ(v, 0x99);
	CHECK_EQ(gmem_host_read(mm, f, PG(8), &v), 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_convert_times_out(void)
{
	return check_times_out(GMEM_POLICY_4K) &&
	       check_times_out(GMEM_POLICY_A);
}

/* -------------------------------------- blocking behind the conversion */

enum blocked_op { OP_FAULT, OP_PIN, OP_GUEST };

struct converter {
	struct gmem_file *f;
	uint64_t off;
	int ret;
};

static void *converter_main(void *arg)
{
	struct converter *c = arg;

	c->ret = gmem_convert(c->f, c->off, K4, GMEM_PRIVATE, 0, 10000, NULL);
	return NULL;
}

struct blocked {
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	enum blocked_op op;
	uint64_t off;
	atomic_int started;
	atomic_int done;
	atomic_uint *seq;
	unsigned int done_seq;
	uint64_t conversions_seen;	/* pool-wide, right after returning */
	uint64_t id;
	int ret;
};

static void *blocked_main(void *arg)
{
	struct blocked *b = arg;
	struct gmem_stats s;

	atomic_store(&b->started, 1);
	switch (b->op) {
	case OP_FAULT:
		b->ret = gmem_fault(b->mm, b->f, b->off, GMEM_WRITE);
		break;
	case OP_PIN:
		b->ret = gmem_pin(b->mm, b->f, b->off, K4, 0, &b->id, NULL);
		break;
	case OP_GUEST:
		b->ret = gmem_guest_access(b->f, b->off, 0, 0);
		break;
	}
	b->done_seq = atomic_fetch_add(b->seq, 1);
	atomic_store(&b->done, 1);
	/* pool-wide stats take no invalidate lock: they show whether the
	 * conversion had finished when this call returned */
	gmem_stats(b->pool, NULL, &s);
	b->conversions_seen = s.conversions;
	return NULL;
}

static bool writer_waiting(struct gmem_file *f, unsigned int ms)
{
	struct gfile *gf = to_file(f);
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		if (atomic_load_explicit(&gf->inval.writer_held,
					 memory_order_relaxed))
			return true;
		sleep_ms(1);
	}
	return false;
}

/*
 * A conversion waits for a pin while holding the invalidate lock; a host
 * fault (or pin, or guest access) on another page of the file must wait
 * for the conversion; the main thread's unpin (which takes no invalidate
 * lock) lets it finish.
 */
static bool check_blocks(enum gmem_policy pol, enum blocked_op op)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct converter c = { 0 };
	struct blocked b = { 0 };
	atomic_uint seq = 0;
	pthread_t tc, tb;
	uint64_t id;
	unsigned int unpin_seq;
	bool held, early, started;
	int unpin_ret;

	if (!setup(MB2, 2, pol, 2 * MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	c.f = f;
	c.off = 0;
	CHECK_EQ(pthread_create(&tc, NULL, converter_main, &c), 0);
	held = writer_waiting(f, 5000);

	b.pool = pool;
	b.f = f;
	b.mm = mm;
	b.op = op;
	b.off = MB2 + PG(10);		/* another page, another folio */
	b.seq = &seq;
	if (pthread_create(&tb, NULL, blocked_main, &b)) {
		gmem_unpin(pool, id);
		pthread_join(tc, NULL);
		CHECK(!"pthread_create");
	}
	started = wait_flag(&b.started, 5000);
	sleep_ms(50);
	early = atomic_load(&b.done);		/* must still be blocked */
	unpin_seq = atomic_fetch_add(&seq, 1);
	unpin_ret = gmem_unpin(pool, id);	/* never blocks */
	pthread_join(tc, NULL);
	pthread_join(tb, NULL);

	CHECK(held);
	CHECK(started);
	CHECK(!early);
	CHECK_EQ(unpin_ret, 0);
	CHECK_EQ(c.ret, 0);
	CHECK_EQ(b.ret, 0);
	CHECK(b.done_seq > unpin_seq);
	CHECK_EQ(b.conversions_seen, 1);	/* it returned after the convert */
	if (op == OP_PIN)
		CHECK_EQ(gmem_unpin(pool, b.id), 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_fault_blocks_behind_convert(void)
{
	return check_blocks(GMEM_POLICY_4K, OP_FAULT) &&
	       check_blocks(GMEM_POLICY_A, OP_FAULT) &&
	       check_blocks(GMEM_POLICY_B_LAZY, OP_FAULT);
}

static bool test_pin_blocks_behind_convert(void)
{
	return check_blocks(GMEM_POLICY_4K, OP_PIN) &&
	       check_blocks(GMEM_POLICY_B_EAGER, OP_PIN) &&
	       check_blocks(GMEM_POLICY_B_LAZY, OP_PIN);
}

static bool test_guest_blocks_behind_convert(void)
{
	return check_blocks(GMEM_POLICY_A, OP_GUEST);
}

/* ------------------------------------------------------------- stress */

struct stress {
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm, *mm2;
	uint64_t page;			/* the contended page */
	pthread_barrier_t start;
	atomic_int stop;		/* workers: finish the round and go */
	atomic_int running;		/* checker */
	atomic_uint done[3];		/* rounds of pinner, converter, faulter */
	atomic_int failed;
	pthread_mutex_t msg_lock;
	char msg[256];
	/* counts */
	atomic_ulong pins_ok, pins_efault, to_private_ok, to_private_eagain;
	atomic_ulong faults_ok, faults_sigbus, checks;
};

static void stress_fail(struct stress *st, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&st->msg_lock);
	if (!atomic_load(&st->failed)) {
		va_start(ap, fmt);
		vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
		va_end(ap);
		atomic_store(&st->failed, 1);
	}
	pthread_mutex_unlock(&st->msg_lock);
}

/* Pin the page; while held it is shared and cannot go private. */
static void *stress_pinner(void *arg)
{
	struct stress *st = arg;
	uint64_t off = PG(st->page), id, at;
	uint8_t v;
	int r;

	pthread_barrier_wait(&st->start);
	for (unsigned int i = 0; !atomic_load(&st->stop) &&
	     !atomic_load(&st->failed); i++, atomic_fetch_add(&st->done[0], 1)) {
		r = gmem_pin(st->mm, st->f, off, K4, i & 1 ? GMEM_PIN_EXCLUSIVE :
			     0, &id, NULL);
		if (r == -EFAULT) {
			atomic_fetch_add(&st->pins_efault, 1);
			continue;
		}
		if (r) {
			stress_fail(st, "pin: %d", r);
			break;
		}
		atomic_fetch_add(&st->pins_ok, 1);
		/* a pinned page is shared: the host may read it */
		r = gmem_host_read(st->mm, st->f, off, &v);
		if (r)
			stress_fail(st, "host read of a pinned page: %d", r);
		at = ~0ULL;
		r = gmem_convert(st->f, off, K4, GMEM_PRIVATE, 0, 0, &at);
		if (r != -EAGAIN || at != off)
			stress_fail(st,
				    "convert of a pinned page: %d at 0x%llx",
				    r, (unsigned long long)at);
		r = gmem_unpin(st->pool, id);
		if (r)
			stress_fail(st, "unpin: %d", r);
	}
	return NULL;
}

/*
 * Convert the page to private and back, over and over, pausing a moment
 * between rounds: the invalidate lock is not fair among writers, and a
 * converter that never pauses can keep the pinner's own conversion (and
 * so its unpin) waiting for seconds.
 */
static void *stress_converter(void *arg)
{
	struct stress *st = arg;
	uint64_t off = PG(st->page), at;
	int r;

	pthread_barrier_wait(&st->start);
	for (unsigned int i = 0; !atomic_load(&st->stop) &&
	     !atomic_load(&st->failed); i++, atomic_fetch_add(&st->done[1], 1)) {
		r = gmem_convert(st->f, off, K4, GMEM_PRIVATE, 0, i % 16 == 0,
				 &at);
		if (r == 0) {
			atomic_fetch_add(&st->to_private_ok, 1);
		} else if (r == -EAGAIN && at == off) {
			atomic_fetch_add(&st->to_private_eagain, 1);
		} else {
			stress_fail(st, "convert to private: %d", r);
			break;
		}
		r = gmem_convert(st->f, off, K4, GMEM_SHARED, 0, 0, &at);
		if (r) {
			stress_fail(st, "convert to shared: %d", r);
			break;
		}
		if (i % 8 == 7)
			nanosleep(&(struct timespec){ 0, 20000 }, NULL);
	}
	return NULL;
}

/*
 * Fault the page through a second mm, and write and read back a
 * neighbour, which stays shared and keeps its content throughout.
 */
static void *stress_faulter(void *arg)
{
	struct stress *st = arg;
	uint64_t off = PG(st->page), nb = PG(st->page + 1);
	uint8_t v;
	int r;

	pthread_barrier_wait(&st->start);
	for (unsigned int i = 0; !atomic_load(&st->stop) &&
	     !atomic_load(&st->failed); i++, atomic_fetch_add(&st->done[2], 1)) {
		r = gmem_fault(st->mm2, st->f, off, i & 1 ? GMEM_WRITE : 0);
		if (r == 0)
			atomic_fetch_add(&st->faults_ok, 1);
		else if (r == GMEM_SIGBUS)
			atomic_fetch_add(&st->faults_sigbus, 1);
		else
			stress_fail(st, "fault: %d", r);
		r = gmem_host_write(st->mm2, st->f, nb, (uint8_t)i);
		if (!r)
			r = gmem_host_read(st->mm2, st->f, nb, &v);
		if (r || v != (uint8_t)i)
			stress_fail(st, "neighbour: %d, 0x%02x for 0x%02x", r,
				    v, (uint8_t)i);
		if (i % 64 == 0)
			gmem_guest_access(st->f, off, 0, 0);
	}
	return NULL;
}

/* Validate the whole pool now and then while the others run. */
static void *stress_checker(void *arg)
{
	struct stress *st = arg;
	char why[256];

	while (atomic_load(&st->running) && !atomic_load(&st->failed)) {
		if (gmem_check(st->pool, why, sizeof(why)))
			stress_fail(st, "gmem_check: %s", why);
		atomic_fetch_add(&st->checks, 1);
		sleep_ms(2);
	}
	return NULL;
}

/* Every worker has done @min rounds. */
static bool stress_enough(struct stress *st, unsigned int min)
{
	for (int i = 0; i < 3; i++)
		if (atomic_load(&st->done[i]) < min)
			return false;
	return true;
}

/*
 * Run the three workers (and the checker) together for at least @ms and
 * until each has done @min rounds (at most 3 s).
 */
static bool check_stress(uint64_t psize, enum gmem_policy pol,
			 unsigned int min, unsigned int ms, bool checker)
{
	struct stress st = { 0 };
	pthread_t tp, tc, tf, tk;
	struct gmem_stats s;
	uint64_t t0;
	uint8_t v;

	if (!setup(psize, 1, pol, psize, SHARED, &st.pool, &st.f, &st.mm))
		return false;
	CHECK_EQ(gmem_mm_create(st.pool, st.mm, &st.mm2), 0);
	pthread_mutex_init(&st.msg_lock, NULL);
	pthread_barrier_init(&st.start, NULL, 4);
	st.page = 37;
	atomic_store(&st.running, checker);
	CHECK_EQ(gmem_host_write(st.mm, st.f, PG(st.page), 0xab), 0);
	if (checker)
		CHECK_EQ(pthread_create(&tk, NULL, stress_checker, &st), 0);
	CHECK_EQ(pthread_create(&tp, NULL, stress_pinner, &st), 0);
	CHECK_EQ(pthread_create(&tc, NULL, stress_converter, &st), 0);
	CHECK_EQ(pthread_create(&tf, NULL, stress_faulter, &st), 0);
	pthread_barrier_wait(&st.start);
	t0 = now_ms();
	while (!atomic_load(&st.failed) && now_ms() - t0 < 3000 &&
	       (now_ms() - t0 < ms || !stress_enough(&st, min)))
		sleep_ms(5);
	atomic_store(&st.stop, 1);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	pthread_join(tf, NULL);
	atomic_store(&st.running, 0);
	if (checker)
		pthread_join(tk, NULL);
	pthread_mutex_destroy(&st.msg_lock);
	pthread_barrier_destroy(&st.start);

	if (atomic_load(&st.failed))
		fprintf(stderr, "%s %s: %s\n", policy_name(pol),
			psize == GB1 ? "1G" : "2M", st.msg);
	if (getenv("GMEM_TEST_VERBOSE"))
		fprintf(stderr,
			"stress %s %s: %u ms; pins %lu ok %lu efault; to-private %lu ok %lu eagain; faults %lu ok %lu sigbus; %lu checks\n",
			policy_name(pol), psize == GB1 ? "1G" : "2M",
			(unsigned int)(now_ms() - t0),
			atomic_load(&st.pins_ok), atomic_load(&st.pins_efault),
			atomic_load(&st.to_private_ok),
			atomic_load(&st.to_private_eagain),
			atomic_load(&st.faults_ok),
			atomic_load(&st.faults_sigbus), atomic_load(&st.checks));
	if (atomic_load(&st.failed)) {
		/* leave nothing behind for the leak checker */
		gmem_pool_destroy(st.pool);
		return false;
	}
	CHECK(stress_enough(&st, min));
	CHECK(atomic_load(&st.pins_ok) > 0);
	CHECK(atomic_load(&st.to_private_ok) > 0);
	CHECK_INVARIANTS(st.pool);
	STATS(st.pool, st.f, &s);
	CHECK_EQ(s.pins, 0);
	/* the converter ends every round shared; content is in place */
	CHECK_EQ(gmem_host_read(st.mm, st.f, PG(st.page), &v), 0);
	CHECK_EQ(v, 0xab);
	CHECK_EQ(gmem_file_close(st.f), 0);
	FINISH(st.pool);
}

static bool test_stress_pin_vs_convert(void)
{
	return check_stress(MB2, GMEM_POLICY_4K, 1500, 200, false) &&
	       check_stress(MB2, GMEM_POLICY_A, 1500, 200, false) &&
	       check_stress(MB2, GMEM_POLICY_B_EAGER, 1500, 200, false) &&
	       check_stress(MB2, GMEM_POLICY_B_LAZY, 1500, 200, false) &&
	       check_stress(GB1, GMEM_POLICY_B_LAZY, 1500, 200, false);
}

/*
 * The same with gmem_check() running alongside: the validators must hold
 * at every moment another thread can observe (gmem.h: any function may be
 * called from any thread), unpins included.
 */
static bool test_stress_with_concurrent_check(void)
{
	return check_stress(MB2, GMEM_POLICY_4K, 1000, 150, true) &&
	       check_stress(MB2, GMEM_POLICY_B_LAZY, 1000, 150, true);
}

/*
 * The smallest form of the above: one thread pins and unpins a page, the
 * other runs gmem_check().  gmem_unpin() takes the pin out of the pool's
 * table before it takes the file lock to drop the counts, so a check in
 * between sees counts without a pin record.
 */
struct unpin_race {
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	atomic_int stop;
	atomic_int err;
	atomic_ulong rounds;
};

static void *unpin_race_main(void *arg)
{
	struct unpin_race *u = arg;
	uint64_t id;

	while (!atomic_load(&u->stop)) {
		if (gmem_pin(u->mm, u->f, 0, K4, 0, &id, NULL) ||
		    gmem_unpin(u->pool, id)) {
			atomic_store(&u->err, 1);
			break;
		}
		atomic_fetch_add(&u->rounds, 1);
	}
	return NULL;
}

static bool test_check_during_unpin(void)
{
	struct unpin_race u = { 0 };
	char why[256] = "";
	pthread_t t;
	uint64_t t0, checks = 0;
	int bad = 0;

	if (!setup(MB2, 1, GMEM_POLICY_4K, MB2, SHARED, &u.pool, &u.f, &u.mm))
		return false;
	CHECK_EQ(pthread_create(&t, NULL, unpin_race_main, &u), 0);
	t0 = now_ms();
	while (!bad && now_ms() - t0 < 200) {
		bad = gmem_check(u.pool, why, sizeof(why));
		checks++;
	}
	atomic_store(&u.stop, 1);
	pthread_join(t, NULL);
	if (bad) {
		fprintf(stderr, "gmem_check after %llu checks, %lu pin rounds: %s\n",
			(unsigned long long)checks, atomic_load(&u.rounds), why);
		gmem_pool_destroy(u.pool);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(atomic_load(&u.err), 0);
	CHECK_EQ(gmem_file_close(u.f), 0);
	FINISH(u.pool);
}

/* --------------------------------------------- fast pins across threads */

struct handoff {
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	atomic_uint_fast64_t id;	/* a pin for the unpinner; 0: none */
	atomic_bool stop;
	atomic_int err;
	atomic_ulong rounds;
};

static void *handoff_pinner(void *arg)
{
	struct handoff *h = arg;

	while (!atomic_load(&h->stop)) {
		uint64_t id;
		int r;

		if (atomic_load(&h->id))
			continue;		/* the unpinner has not taken it */
		r = gmem_pin(h->mm, h->f, 0, K4, 0, &id, NULL);
		if (r) {
			atomic_store(&h->err, r);
			break;
		}
		atomic_store(&h->id, id);
	}
	return NULL;
}

static void *handoff_unpinner(void *arg)
{
	struct handoff *h = arg;

	while (!atomic_load(&h->stop)) {
		uint64_t id = atomic_load(&h->id);

		if (!id)
			continue;
		if (gmem_unpin(h->pool, id))
			atomic_store(&h->err, -ENOENT);
		atomic_fetch_add(&h->rounds, 1);
		/* only now may the pinner take the next: one pin at a time */
		atomic_store(&h->id, 0);
	}
	return NULL;
}

/*
 * One pin at a time, taken on one thread (the fast path) and dropped on
 * another: the statistics, read meanwhile, never count more than one pin
 * (a count kept per thread could be read as -1, that is 2^64 - 1).
 */
static bool test_stats_fast_pins_across_threads(void)
{
	struct handoff h = { 0 };
	struct gmem_stats s;
	pthread_t tp, tu;
	uint64_t t0, worst = 0, id;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &h.pool, &h.f,
		   &h.mm))
		return false;
	CHECK_EQ(gmem_fault(h.mm, h.f, 0, 0), 0);
	CHECK_EQ(pthread_create(&tp, NULL, handoff_pinner, &h), 0);
	CHECK_EQ(pthread_create(&tu, NULL, handoff_unpinner, &h), 0);
	t0 = now_ms();
	while (now_ms() - t0 < 300) {
		CHECK_EQ(gmem_stats(h.pool, NULL, &s), 0);
		worst = MAX(worst, s.pins);
		CHECK_EQ(gmem_stats(h.pool, h.f, &s), 0);
		worst = MAX(worst, s.pins);
	}
	atomic_store(&h.stop, true);
	pthread_join(tp, NULL);
	pthread_join(tu, NULL);
	CHECK_EQ(atomic_load(&h.err), 0);
	CHECK(atomic_load(&h.rounds) > 0);
	if (worst > 1)
		fprintf(stderr, "pins read %llu\n", (unsigned long long)worst);
	CHECK(worst <= 1);
	id = atomic_load(&h.id);
	if (id)
		CHECK_EQ(gmem_unpin(h.pool, id), 0);
	CHECK_EQ(gmem_file_close(h.f), 0);
	FINISH(h.pool);
}

static void *one_pin_main(void *arg)
{
	struct handoff *h = arg;
	uint64_t id;

	if (gmem_pin(h->mm, h->f, 0, K4, 0, &id, NULL) ||
	    gmem_unpin(h->pool, id))
		atomic_store(&h->err, -1);
	return NULL;
}

/* Threads that pin, unpin and end leave no pin record behind: the table
 * does not grow with the number of threads. */
static bool test_pin_slots_outlive_threads(void)
{
	struct handoff h = { 0 };

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &h.pool, &h.f,
		   &h.mm))
		return false;
	CHECK_EQ(gmem_fault(h.mm, h.f, 0, 0), 0);
	for (int i = 0; i < 200; i++) {
		pthread_t t;

		CHECK_EQ(pthread_create(&t, NULL, one_pin_main, &h), 0);
		pthread_join(t, NULL);
	}
	CHECK_EQ(atomic_load(&h.err), 0);
	CHECK(atomic_load(&to_pool(h.pool)->pin_hwm) <= 2);
	CHECK_EQ(gmem_file_close(h.f), 0);
	FINISH(h.pool);
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_convert_waits_for_unpin),
		TEST(test_convert_times_out),
		TEST(test_fault_blocks_behind_convert),
		TEST(test_pin_blocks_behind_convert),
		TEST(test_guest_blocks_behind_convert),
		TEST(test_stress_pin_vs_convert),
		TEST(test_stress_with_concurrent_check),
		TEST(test_check_during_unpin),
		TEST(test_stats_fast_pins_across_threads),
		TEST(test_pin_slots_outlive_threads),
	};

	return RUN_TESTS(tests);
}
