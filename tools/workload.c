// SPDX-License-Identifier: MIT
/*
 * workload.c - the workloads of `gmem compare` and the executor they run on.
 *
 * The executor (struct wl) owns one pool, one file ("g") and one host mm
 * ("vmm") that maps it.  Each operation calls the library, checks the
 * answer, and, when a trace is asked for, writes the command and an
 * `expect` of its result, so that `gmem replay` of the trace runs the same
 * calls and checks the same answers.
 *
 * Host I/O.  The VMM's I/O threads pin a shared buffer (short-term), move
 * its data, and unpin when the I/O completes.  I/O is in flight for a
 * while: up to a queue depth of pins are held while the guest goes on.
 * Completions happen in submission order when the queue is full.  When a
 * conversion fails with EAGAIN because of an in-flight pin, the VMM does
 * what a real one does: it waits until the in-flight I/O has completed,
 * then retries.  That wait is real: a separate I/O thread completes the
 * queue (writes each pinned page, unpins) while the VMM waits for it, and
 * its length is `pin_wait_ns`.  Since the VMM waits, the order of calls is
 * the same in every run, and the trace writes it down as the unpins
 * followed by the retry.
 *
 * Latency.  Every gmem_convert() call is timed, failed ones included;
 * p50/p99/max are over all calls.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kcost.h"
#include "workload.h"

#define PAGE		GMEM_PAGE_SIZE
#define IO_DEPTH	8	/* in-flight host I/Os at most */
#define EMIT_STAT_KEYS	"shatters collapses conversions eagain ebusy " \
			"folios_1g folios_2m folios_4k guest_1g guest_2m " \
			"guest_4k iommu_1g iommu_2m iommu_4k meta_bytes " \
			"vmemmap_bytes pool_free pool_resv pins zaps " \
			"split_1g split_2m merge_1g merge_2m zeroed_bytes " \
			"tlb_flushes host_faults guest_unmap_1g " \
			"guest_unmap_2m guest_unmap_4k guest_flushes " \
			"iommu_map_1g iommu_map_2m iommu_map_4k " \
			"iommu_unmap_1g iommu_unmap_2m iommu_unmap_4k " \
			"iommu_flushes meta_peak_bytes vmemmap_peak_bytes"

struct io {
	uint64_t id;		/* the library's pin id */
	uint64_t name;		/* the trace's pin name: p<name> */
	uint64_t off, len;
	void **pages;		/* the pinned pages' bytes, or NULL entries */
};

/*
 * The I/O thread: completes the in-flight queue on request, while the VMM
 * waits.  @lock protects @todo/@busy/@stop; the VMM hands over a batch and
 * sleeps on @done_cv until @busy drops.
 */
struct io_thread {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work_cv, done_cv;
	struct io *todo;
	unsigned int nr_todo;
	bool busy, stop, started;
	struct gmem_pool *pool;
	int error;
};

struct wl {
	const struct workload *def;
	const struct wl_params *par;
	enum gmem_policy policy;
	uint64_t size, huge;
	struct gmem_pool *pool;
	struct gmem_file *file;
	struct gmem_mm *mm;
	FILE *emit;
	uint64_t rng;

	struct io io[IO_DEPTH];	/* in flight, oldest first */
	unsigned int nr_io;
	struct io_thread iot;
	uint64_t next_pin;	/* trace names of pins */

	uint64_t *lat;		/* ns of every gmem_convert() call */
	uint64_t *klat;		/* its modelled kernel cost (with a model) */
	size_t nr_lat, cap_lat;
	uint64_t pin_wait_ns, ops;

	int error;
	char what[200];
};

/* ------------------------------------------------------------- helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* splitmix64: the guest's choices, from the seed alone. */
static uint64_t rnd(struct wl *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A uniform number in [0, n). */
static uint64_t rnd_below(struct wl *w, uint64_t n)
{
	return n ? rnd(w) % n : 0;
}

/* A random page-aligned offset of a @len range inside [lo, hi). */
static uint64_t rnd_range(struct wl *w, uint64_t lo, uint64_t hi,
			  uint64_t len)
{
	return lo + rnd_below(w, (hi - lo - len) / PAGE + 1) * PAGE;
}

const char *policy_name(enum gmem_policy p)
{
	switch (p) {
	case GMEM_POLICY_DEFAULT:
		return "default";
	case GMEM_POLICY_4K:
		return "4k";
	case GMEM_POLICY_A:
		return "a";
	case GMEM_POLICY_B_EAGER:
		return "b-eager";
	case GMEM_POLICY_B_LAZY:
		return "b-lazy";
	case GMEM_POLICY_B_ADAPTIVE:
		return "b-adaptive";
	}
	return "?";
}

static const char *errno_word(int err)
{
	const char *s = gmem_errno_name(err);

	return s && *s ? s : "E?";
}

/* Stops the run: the first failure is the one reported. */
static int fail(struct wl *w, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct wl *w, int err, const char *fmt, ...)
{
	va_list ap;

	if (!w->error) {
		w->error = err ? err : -EPROTO;
		va_start(ap, fmt);
		vsnprintf(w->what, sizeof(w->what), fmt, ap);
		va_end(ap);
	}
	return w->error;
}

/* The trace's form of a result, as `gmem replay` prints it. */
static void emit_result(struct wl *w, int ret, bool has_at, uint64_t at)
{
	if (!w->emit)
		return;
	if (!ret)
		fprintf(w->emit, "expect ok\n");
	else if (ret == GMEM_SIGBUS)
		fprintf(w->emit, "expect sigbus\n");
	else if (ret == GMEM_GUEST_FAULT)
		fprintf(w->emit, "expect fault\n");
	else if (ret == GMEM_GUEST_HWPOISON)
		fprintf(w->emit, "expect hwpoison\n");
	else if (has_at)
		fprintf(w->emit, "expect err %s at=0x%" PRIx64 "\n",
			errno_word(ret), at);
	else
		fprintf(w->emit, "expect err %s\n", errno_word(ret));
}

static void progress(struct wl *w, double done)
{
	if (w->par->progress)
		w->par->progress(w->par->progress_arg, done);
}

/* ----------------------------------------------------------- I/O thread */

static void io_complete(struct gmem_pool *pool, struct io *io, int *error)
{
	uint64_t i, n = io->len / PAGE;
	int ret;

	/* the device's DMA: write every pinned page */
	for (i = 0; i < n && io->pages; i++)
		if (io->pages[i])
			memset(io->pages[i], (int)(io->name & 0xff), PAGE);
	ret = gmem_unpin(pool, io->id);
	if (ret && !*error)
		*error = ret;
	free(io->pages);
	io->pages = NULL;
}

static void *io_thread_main(void *arg)
{
	struct io_thread *t = arg;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!t->busy && !t->stop)
			pthread_cond_wait(&t->work_cv, &t->lock);
		if (t->stop)
			break;
		pthread_mutex_unlock(&t->lock);
		for (unsigned int i = 0; i < t->nr_todo; i++)
			io_complete(t->pool, &t->todo[i], &t->error);
		pthread_mutex_lock(&t->lock);
		t->busy = false;
		pthread_cond_broadcast(&t->done_cv);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static int io_thread_start(struct wl *w)
{
	struct io_thread *t = &w->iot;

	t->pool = w->pool;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->work_cv, NULL);
	pthread_cond_init(&t->done_cv, NULL);
	if (pthread_create(&t->thread, NULL, io_thread_main, t)) {
		pthread_cond_destroy(&t->done_cv);
		pthread_cond_destroy(&t->work_cv);
		pthread_mutex_destroy(&t->lock);
		return fail(w, -EAGAIN, "cannot start the I/O thread");
	}
	t->started = true;
	return 0;
}

static void io_thread_stop(struct wl *w)
{
	struct io_thread *t = &w->iot;

	if (!t->started)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->work_cv);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->done_cv);
	pthread_cond_destroy(&t->work_cv);
	pthread_mutex_destroy(&t->lock);
	t->started = false;
}

/* ----------------------------------------------------------- operations */

static void emit_unpin(struct wl *w, const struct io *io)
{
	if (w->emit) {
		fprintf(w->emit, "unpin p%" PRIu64 "\n", io->name);
		emit_result(w, 0, false, 0);
	}
}

/* Completes the oldest in-flight I/O in this thread (its normal end). */
static int io_retire_oldest(struct wl *w)
{
	int error = 0;

	if (!w->nr_io)
		return 0;
	io_complete(w->pool, &w->io[0], &error);
	emit_unpin(w, &w->io[0]);
	memmove(&w->io[0], &w->io[1], --w->nr_io * sizeof(w->io[0]));
	w->ops++;
	if (error)
		return fail(w, error, "unpin: %s", errno_word(error));
	return 0;
}

/*
 * Waits for every in-flight I/O to complete on the I/O thread: the wait of
 * a conversion that found them in its way.  Counts the time waited.
 */
static int io_wait_all(struct wl *w)
{
	struct io_thread *t = &w->iot;
	uint64_t t0;

	if (!w->nr_io)
		return 0;
	t0 = now_ns();
	pthread_mutex_lock(&t->lock);
	t->todo = w->io;
	t->nr_todo = w->nr_io;
	t->busy = true;
	pthread_cond_broadcast(&t->work_cv);
	while (t->busy)
		pthread_cond_wait(&t->done_cv, &t->lock);
	pthread_mutex_unlock(&t->lock);
	w->pin_wait_ns += now_ns() - t0;
	for (unsigned int i = 0; i < w->nr_io; i++)
		emit_unpin(w, &w->io[i]);
	w->ops += w->nr_io;
	w->nr_io = 0;
	if (t->error)
		return fail(w, t->error, "unpin: %s", errno_word(t->error));
	return 0;
}

/*
 * Starts a host I/O on [off, off + len): a short-term pin held until the
 * I/O completes.  The range must be shared.  A full queue completes its
 * oldest I/O first.
 */
static int io_submit(struct wl *w, uint64_t off, uint64_t len)
{
	struct io *io;
	uint64_t id;
	void **pages;
	int ret;

	if (w->nr_io == IO_DEPTH && io_retire_oldest(w))
		return w->error;
	pages = calloc(len / PAGE, sizeof(*pages));
	if (!pages)
		return fail(w, -ENOMEM, "no memory for an I/O");
	ret = gmem_pin(w->mm, w->file, off, len, 0, &id, pages);
	if (w->emit) {
		fprintf(w->emit, "pin p%" PRIu64 " vmm g 0x%" PRIx64 " 0x%"
			PRIx64 "\n", w->next_pin, off, len);
		emit_result(w, ret, false, 0);
	}
	w->ops++;
	if (ret) {
		free(pages);
		return fail(w, ret, "pin 0x%" PRIx64 "+0x%" PRIx64 ": %s",
			    off, len, errno_word(ret));
	}
	io = &w->io[w->nr_io++];
	*io = (struct io){ id, w->next_pin++, off, len, pages };
	return 0;
}

/*
 * The guest takes a buffer back only after its own I/O has completed: the
 * I/Os that overlap [off, off + len) complete now, in this thread (their
 * normal end, not a wait forced by a conversion).
 */
static int io_retire_range(struct wl *w, uint64_t off, uint64_t len)
{
	unsigned int i = 0;
	int error = 0;

	while (i < w->nr_io) {
		struct io *io = &w->io[i];

		if (io->off >= off + len || off >= io->off + io->len) {
			i++;
			continue;
		}
		io_complete(w->pool, io, &error);
		emit_unpin(w, io);
		memmove(io, io + 1, (--w->nr_io - i) * sizeof(*io));
		w->ops++;
		if (error)
			return fail(w, error, "unpin: %s", errno_word(error));
	}
	return 0;
}

/* Completes every in-flight I/O (a quiesce, not a wait for a conversion). */
static int io_retire_all(struct wl *w)
{
	while (w->nr_io)
		if (io_retire_oldest(w))
			return w->error;
	return 0;
}

static int record_latency(struct wl *w, uint64_t ns, uint64_t kns)
{
	if (w->nr_lat == w->cap_lat) {
		size_t cap = w->cap_lat ? 2 * w->cap_lat : 4096;
		uint64_t *lat = realloc(w->lat, cap * sizeof(*lat));
		uint64_t *klat;

		if (!lat)
			return fail(w, -ENOMEM, "no memory for latencies");
		w->lat = lat;
		klat = realloc(w->klat, cap * sizeof(*klat));
		if (!klat)
			return fail(w, -ENOMEM, "no memory for latencies");
		w->klat = klat;
		w->cap_lat = cap;
	}
	w->klat[w->nr_lat] = kns;
	w->lat[w->nr_lat++] = ns;
	return 0;
}

static int convert_once(struct wl *w, uint64_t off, uint64_t len,
			enum gmem_attr to, uint64_t *at)
{
	struct gmem_stats before, after, d;
	struct kcost k = { 0 };
	uint64_t t0, t1;
	int ret;

	*at = UINT64_MAX;
	/* the call's events, priced: its kernel cost (outside the timing) */
	if (w->par->model && gmem_stats(w->pool, w->file, &before))
		return fail(w, -EPROTO, "stats failed");
	t0 = now_ns();
	ret = gmem_convert(w->file, off, len, to, 0, 0, at);
	t1 = now_ns();
	if (w->par->model) {
		if (gmem_stats(w->pool, w->file, &after))
			return fail(w, -EPROTO, "stats failed");
		kcost_events_diff(&d, &after, &before);
		kcost_of(w->par->model, &d, &k);
	}
	if (w->emit) {
		fprintf(w->emit, "convert g 0x%" PRIx64 " 0x%" PRIx64 " %s\n",
			off, len, to == GMEM_PRIVATE ? "private" : "shared");
		emit_result(w, ret, (ret == -EAGAIN || ret == -EBUSY) &&
			    *at != UINT64_MAX, *at);
	}
	w->ops++;
	if (record_latency(w, t1 - t0, (uint64_t)(k.total + 0.5)))
		return w->error;
	return ret;
}

/*
 * The guest asks for a conversion.  EAGAIN (a short-term pin in the drain
 * set: in-flight I/O) makes the VMM wait for its I/O and retry; EBUSY (a
 * long-term pin) is returned to the workload, which gives up on that range
 * as a guest would.  Anything else stops the run.
 */
static int convert(struct wl *w, uint64_t off, uint64_t len, enum gmem_attr to)
{
	uint64_t at;
	int ret;

	ret = convert_once(w, off, len, to, &at);
	if (ret == -EAGAIN && w->nr_io) {
		if (io_wait_all(w))
			return w->error;
		ret = convert_once(w, off, len, to, &at);
	}
	if (ret == -EBUSY)
		return ret;
	if (ret)
		return fail(w, ret, "convert 0x%" PRIx64 "+0x%" PRIx64
			    " %s: %s", off, len,
			    to == GMEM_PRIVATE ? "private" : "shared",
			    errno_word(ret));
	return 0;
}

/* A long-term pin (a device's DMA buffer): 0, -EOPNOTSUPP or -EBUSY. */
static int pin_longterm(struct wl *w, uint64_t off, uint64_t len,
			uint64_t *id, uint64_t *name)
{
	int ret = gmem_pin(w->mm, w->file, off, len, GMEM_PIN_LONGTERM, id,
			   NULL);

	*name = w->next_pin++;
	if (w->emit) {
		fprintf(w->emit, "pin p%" PRIu64 " vmm g 0x%" PRIx64 " 0x%"
			PRIx64 " longterm\n", *name, off, len);
		emit_result(w, ret, false, 0);
	}
	w->ops++;
	if (ret && ret != -EOPNOTSUPP && ret != -EBUSY)
		return fail(w, ret, "long-term pin 0x%" PRIx64 "+0x%" PRIx64
			    ": %s", off, len, errno_word(ret));
	return ret;
}

static int unpin(struct wl *w, uint64_t id, uint64_t name)
{
	int ret = gmem_unpin(w->pool, id);

	if (w->emit) {
		fprintf(w->emit, "unpin p%" PRIu64 "\n", name);
		emit_result(w, ret, false, 0);
	}
	w->ops++;
	return ret ? fail(w, ret, "unpin: %s", errno_word(ret)) : 0;
}

/* The guest touches [off, off + len) (a prefault, building its map). */
static int guest(struct wl *w, uint64_t off, uint64_t len)
{
	int ret = gmem_guest_access(w->file, off, len, GMEM_WRITE);

	if (w->emit) {
		fprintf(w->emit, "guest g 0x%" PRIx64 " 0x%" PRIx64 " w\n",
			off, len);
		emit_result(w, ret, false, 0);
	}
	w->ops++;
	return ret ? fail(w, ret < 0 ? ret : -EFAULT, "guest 0x%" PRIx64
			  "+0x%" PRIx64 ": %d", off, len, ret) : 0;
}

/* A device maps a shared range (iommufd/VFIO DMA map). */
static int iommu(struct wl *w, uint64_t off, uint64_t len)
{
	uint64_t at = UINT64_MAX;
	int ret = gmem_iommu_map(w->file, off, len, &at);

	if (w->emit) {
		fprintf(w->emit, "iommu g 0x%" PRIx64 " 0x%" PRIx64 "\n",
			off, len);
		emit_result(w, ret, ret && at != UINT64_MAX, at);
	}
	w->ops++;
	return ret ? fail(w, ret, "iommu 0x%" PRIx64 "+0x%" PRIx64 ": %s",
			  off, len, errno_word(ret)) : 0;
}

static int punch(struct wl *w, uint64_t off, uint64_t len)
{
	int ret = gmem_punch(w->file, off, len);

	if (w->emit) {
		fprintf(w->emit, "punch g 0x%" PRIx64 " 0x%" PRIx64 "\n",
			off, len);
		emit_result(w, ret, false, 0);
	}
	w->ops++;
	return ret ? fail(w, ret, "punch 0x%" PRIx64 "+0x%" PRIx64 ": %s",
			  off, len, errno_word(ret)) : 0;
}

/*
 * One shared I/O buffer's life, as a confidential guest's driver lives it:
 * share it, let the host do I/O on it (in flight for a while), take it
 * back private later (done by the caller).
 */
static int share_and_submit(struct wl *w, uint64_t off, uint64_t len)
{
	if (convert(w, off, len, GMEM_SHARED))
		return w->error ? w->error : -EBUSY;
	return io_submit(w, off, len);
}

/* ------------------------------------------------------------ workloads */

/*
 * io-churn (synthetic; it was tdx-boot before the calibrated boots): a
 * private guest shares a 64 MiB bounce buffer, mapped for a device, and
 * virtio rings and per-device buffers as scattered 4K pages; then it
 * churns short-lived shared I/O buffers (4-16K) while the host's I/O on
 * them is in flight, so that a conversion meets other buffers' pins.
 */
static int wl_io_churn(struct wl *w)
{
	uint64_t bounce = 256ULL << 20, bounce_len = 64ULL << 20;
	uint64_t virtio = w->size / 2;	/* the drivers' pages live up there */
	uint64_t n = w->par->ops ? w->par->ops : w->def->default_ops;
	uint64_t i, live[16] = { 0 }, live_len[16] = { 0 };

	if (w->size < 1ULL << 30)
		return fail(w, -EINVAL, "io-churn needs at least 1 GiB");
	if (convert(w, bounce, bounce_len, GMEM_SHARED) ||
	    iommu(w, bounce, bounce_len))
		return w->error;
	/* three devices: a 16K ring each and 16 scattered buffer pages */
	for (i = 0; i < 3 * 17; i++) {
		uint64_t len = i % 17 ? PAGE : 4 * PAGE;
		uint64_t off = rnd_range(w, virtio, w->size, len);

		if (convert(w, off, len, GMEM_SHARED) || iommu(w, off, len))
			return w->error;
	}
	/* churn: 16 buffer slots, each reused: take back, share anew */
	for (i = 0; i < n; i++) {
		unsigned int s = (unsigned int)rnd_below(w, 16);

		if (live_len[s] &&
		    (io_retire_range(w, live[s], live_len[s]) ||
		     convert(w, live[s], live_len[s], GMEM_PRIVATE)))
			return w->error;
		live_len[s] = (1 + rnd_below(w, 4)) * PAGE;
		live[s] = rnd_range(w, bounce + bounce_len, virtio,
				    live_len[s]);
		if (share_and_submit(w, live[s], live_len[s]))
			return w->error;
		if ((i & 255) == 0)
			progress(w, (double)i / (double)n);
	}
	return io_retire_all(w);
}

/*
 * pkvm-io: pKVM shares around every I/O: share the buffer, the host pins
 * it for the I/O, unpins, and the guest unshares it at once.  A few I/Os
 * are in flight at a time, so one buffer's unshare meets another's pin.
 */
static int wl_pkvm_io(struct wl *w)
{
	uint64_t n = w->par->ops ? w->par->ops : w->def->default_ops;
	uint64_t i, off[4] = { 0 }, len[4] = { 0 };

	for (i = 0; i < n; i++) {
		unsigned int s = (unsigned int)(i % 4);

		if (len[s] && (io_retire_range(w, off[s], len[s]) ||
			       convert(w, off[s], len[s], GMEM_PRIVATE)))
			return w->error;
		len[s] = (1ULL << rnd_below(w, 5)) * PAGE;	/* 4K-64K */
		off[s] = rnd_range(w, 0, w->size, len[s]);
		/* another slot's buffer may overlap: then it is shared */
		if (share_and_submit(w, off[s], len[s]))
			return w->error;
		if ((i & 255) == 0)
			progress(w, (double)i / (double)n);
	}
	if (io_retire_all(w))
		return w->error;
	for (i = 0; i < 4; i++)
		if (len[i] && convert(w, off[i], len[i], GMEM_PRIVATE))
			return w->error;
	return 0;
}

/*
 * vfio-longterm: a passthrough device's DMA buffers: a 32 MiB region is
 * shared, mapped in the IOMMU and long-term pinned in 64K chunks (every
 * other chunk) for the device's life.  Meanwhile the guest converts 4K
 * pages elsewhere in the same huge page, and now and then takes back a
 * page of the region that is not pinned.  Policy `a` refuses the pins.
 */
static int wl_vfio_longterm(struct wl *w)
{
	uint64_t region = 64ULL << 20, rlen = 32ULL << 20, chunk = 64ULL << 10;
	uint64_t n = w->par->ops ? w->par->ops : w->def->default_ops;
	uint64_t nr_chunks = rlen / chunk / 2, i, slot[8] = { 0 };
	uint64_t *ids, *names;
	bool *held;

	if (w->size < 1ULL << 30)
		return fail(w, -EINVAL, "vfio-longterm needs at least 1 GiB");
	if (convert(w, region, rlen, GMEM_SHARED) || iommu(w, region, rlen))
		return w->error;
	ids = calloc(nr_chunks, sizeof(*ids));
	names = calloc(nr_chunks, sizeof(*names));
	held = calloc(nr_chunks, sizeof(*held));
	if (!ids || !names || !held) {
		fail(w, -ENOMEM, "no memory for the pin table");
		goto out;
	}
	for (i = 0; i < nr_chunks; i++) {
		int ret = pin_longterm(w, region + 2 * i * chunk, chunk,
				       &ids[i], &names[i]);

		if (ret == 0)
			held[i] = true;
		else if (w->error)
			goto out;
	}
	for (i = 0; i < n; i++) {
		unsigned int s = (unsigned int)(i % 8);
		uint64_t off;

		if (rnd_below(w, 8) == 0) {
			/* a page of an unpinned chunk of the region */
			off = region + (2 * rnd_below(w, nr_chunks) + 1) *
				chunk + rnd_below(w, chunk / PAGE) * PAGE;
			/* EBUSY: the guest gives up on that page */
			if (!convert(w, off, PAGE, GMEM_PRIVATE))
				convert(w, off, PAGE, GMEM_SHARED);
		} else {
			/* elsewhere in the first huge page: an I/O buffer */
			if (slot[s] && (io_retire_range(w, slot[s], PAGE) ||
					convert(w, slot[s], PAGE,
						GMEM_PRIVATE)))
				goto out;
			slot[s] = rnd_range(w, region + rlen, 1ULL << 30,
					    PAGE);
			share_and_submit(w, slot[s], PAGE);
		}
		if (w->error)
			goto out;
		if ((i & 255) == 0)
			progress(w, (double)i / (double)n);
	}
	if (io_retire_all(w))
		goto out;
	for (i = 0; i < 8; i++)
		if (slot[i] && convert(w, slot[i], PAGE, GMEM_PRIVATE))
			goto out;
	for (i = 0; i < nr_chunks; i++)
		if (held[i] && unpin(w, ids[i], names[i]))
			goto out;
out:
	free(held);
	free(names);
	free(ids);
	return w->error;
}

/*
 * balloon: the guest uses all of its memory, with some I/O buffers shared;
 * then its balloon driver gives memory back (punch-hole of whole huge
 * pages and of parts of others, some while a host I/O is still in
 * flight), and later takes some of it again, in rounds.
 */
static int wl_balloon(struct wl *w)
{
	uint64_t rounds = w->par->ops ? w->par->ops : w->def->default_ops;
	uint64_t nr_huge = w->size / w->huge, r, i;

	if (guest(w, 0, w->size))
		return w->error;
	for (r = 0; r < rounds; r++) {
		/* some shared I/O buffers, in flight while the balloon runs */
		for (i = 0; i < 32; i++) {
			uint64_t off = rnd_range(w, 0, w->size, 4 * PAGE);

			if (share_and_submit(w, off, 4 * PAGE))
				return w->error;
		}
		/* inflate: a quarter of the huge pages whole, an eighth in part */
		for (i = 0; i < nr_huge / 4; i++) {
			uint64_t hp = rnd_below(w, nr_huge);

			if (punch(w, hp * w->huge, w->huge))
				return w->error;
		}
		for (i = 0; i < nr_huge / 8; i++) {
			uint64_t hp = rnd_below(w, nr_huge);
			uint64_t len = (1 + rnd_below(w, w->huge / PAGE / 2)) *
				       PAGE;

			if (punch(w, rnd_range(w, hp * w->huge,
					       (hp + 1) * w->huge, len), len))
				return w->error;
		}
		if (io_retire_all(w))
			return w->error;
		/* deflate: the guest touches half of its memory again */
		for (i = 0; i < nr_huge / 2; i++) {
			uint64_t hp = rnd_below(w, nr_huge);

			if (guest(w, hp * w->huge, w->huge))
				return w->error;
		}
		progress(w, (double)(r + 1) / (double)rounds);
	}
	return 0;
}

/*
 * scale: a large guest (1 TiB, metadata only) that has touched all of its
 * memory converts random 4K pages to shared and back, one after another,
 * to show how the cost grows with the guest and the number of conversions.
 * Under b-lazy every pair splits a 1G page down to 4K and merges it back.
 */
static int wl_scale(struct wl *w)
{
	uint64_t n = w->par->ops ? w->par->ops : w->def->default_ops;
	uint64_t i, off = 0;

	/* a booted guest: all of its memory is in use, huge pages intact */
	if (guest(w, 0, w->size))
		return w->error;
	for (i = 0; i < n; i++) {
		if (i % 2 == 0) {
			off = rnd_range(w, 0, w->size, PAGE);
			if (convert(w, off, PAGE, GMEM_SHARED))
				return w->error;
		} else if (convert(w, off, PAGE, GMEM_PRIVATE)) {
			return w->error;
		}
		if ((i & 4095) == 0)
			progress(w, (double)i / (double)n);
	}
	return 0;
}

/* --------------------------------- workloads from published guest behaviour */

/*
 * tdx-boot, snp-boot and vfio-snp follow what confidential guests, KVM and
 * VMMs were published to do; docs/WORKLOADS.md gives the source of every
 * parameter here, or says that it is a guess.  Offsets are offsets into
 * guest RAM (the file): the PCI hole below 4 GiB is not in it, and RAM
 * above 4 GiB starts at a 1 GiB-aligned offset, so alignments are those
 * of guest physical addresses.
 */
#define MIB		(1ULL << 20)
#define GIB		(1ULL << 30)
#define SZ_2M		(2 * MIB)
#define MAP_GPA_CHUNK	(2 * MIB)	/* KVM's TDX_MAP_GPA_MAX_LEN */
#define PSC_MAX_ENTRY	253		/* VMGEXIT_PSC_MAX_ENTRY */
#define FW_WINDOW	(5 * MIB)	/* firmware's pages atop low RAM */
#define DRIVER_PAGES	2700		/* 4K conversions of a booting guest */
#define DRIVER_WINDOW	(256 * MIB)	/* where they land: a guess */
#define ACCEPT_CHUNK	(4 * MIB)	/* Linux accepts MAX_PAGE_ORDER */
#define VFIO_SHARED	775		/* per 10,000: 1.24 GiB of 16 GiB */
#define VFIO_BUF_ORDERS	5		/* buffers of 4K..64K: a guess */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * The SWIOTLB of a guest of @mem bytes: mem_encrypt_setup_arch() asks for
 * 6% of memory clamped to [64 MiB, 1 GiB]; swiotlb_adjust_size() rounds it
 * to segments of 128 slabs of 2 KiB, and swiotlb_adjust_nareas() (one area
 * per possible CPU) rounds the slab count up to a power of two.
 */
static uint64_t swiotlb_bytes(uint64_t mem)
{
	uint64_t size = mem / 100 * 6 + mem % 100 * 6 / 100, slabs, p2 = 1;

	if (size < 64 * MIB)
		size = 64 * MIB;
	if (size > GIB)
		size = GIB;
	slabs = (size + 2047) / 2048;
	slabs = (slabs + 127) / 128 * 128;
	while (p2 < slabs)
		p2 <<= 1;
	return p2 * 2048;
}

/* Where a calibrated guest keeps what (all but the sizes are guesses). */
struct layout {
	uint64_t low;		/* end of RAM below 4 GiB */
	uint64_t fw;		/* the firmware's pages: [fw, low) */
	uint64_t tlb, tlb_len;	/* the SWIOTLB, just below them */
	uint64_t drv, drv_len;	/* where drivers' DMA pages come from */
};

static int layout(struct wl *w, struct layout *l)
{
	/* QEMU q35: all RAM is below 4 GiB under 2.75 GiB, 2 GiB of it above */
	l->low = w->size >= 0xb0000000ULL ? 2 * GIB : w->size;
	l->tlb_len = swiotlb_bytes(w->size);
	if (w->size < GIB || l->low < FW_WINDOW + l->tlb_len + DRIVER_WINDOW)
		return fail(w, -EINVAL, "%s needs at least 1 GiB",
			    w->def->name);
	l->fw = l->low - FW_WINDOW;
	l->tlb = l->fw - l->tlb_len;
	if (w->size > l->low) {		/* the first RAM above 4 GiB */
		l->drv = l->low;
		l->drv_len = min_u64(DRIVER_WINDOW, w->size - l->low);
	} else {			/* below the SWIOTLB */
		l->drv_len = DRIVER_WINDOW;
		l->drv = l->tlb - l->drv_len;
	}
	return 0;
}

/*
 * A TDX guest's TDG.VP.VMCALL<MapGPA>: KVM hands the VMM the range in
 * chunks of 2 MiB counted from its start, one conversion each.
 */
static int tdx_map_gpa(struct wl *w, uint64_t off, uint64_t len,
		       enum gmem_attr to)
{
	for (uint64_t p = off; p < off + len; p += MAP_GPA_CHUNK) {
		int ret = convert(w, p, min_u64(MAP_GPA_CHUNK, off + len - p),
				  to);

		if (ret)
			return ret;
	}
	return 0;
}

/* What the VMM does after a conversion an SNP exit asked for. */
typedef int (*psc_then)(struct wl *w, uint64_t off, uint64_t len, void *arg);

static int psc_exit(struct wl *w, uint64_t off, uint64_t len,
		    enum gmem_attr to, psc_then then, void *arg)
{
	int ret = convert(w, off, len, to);

	return ret ? ret : then ? then(w, off, len, arg) : 0;
}

/*
 * An SNP guest's page state change: Linux (__set_pages_state()) sends
 * requests of at most 253 entries, a 2 MiB entry where the address is
 * 2 MiB-aligned with 2 MiB left, 4K entries otherwise; KVM
 * (snp_begin_psc()) gives the VMM one exit per run of adjacent entries of
 * one size, and the VMM converts each.
 */
static int snp_psc(struct wl *w, uint64_t off, uint64_t len, enum gmem_attr to,
		   psc_then then, void *arg)
{
	uint64_t p = off, end = off + len;
	int ret;

	while (p < end) {		/* one GHCB request */
		uint64_t run = p, run_len = 0;
		bool run_2m = false;

		for (unsigned int n = 0; p < end && n < PSC_MAX_ENTRY; n++) {
			bool e2m = !(p % SZ_2M) && end - p >= SZ_2M;

			if (run_len && e2m != run_2m) {
				ret = psc_exit(w, run, run_len, to, then, arg);
				if (ret)
					return ret;
				run = p;
				run_len = 0;
			}
			run_2m = e2m;
			run_len += e2m ? SZ_2M : PAGE;
			p += e2m ? SZ_2M : PAGE;
		}
		ret = psc_exit(w, run, run_len, to, then, arg);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Drivers share @n 4K pages, each drawn from [lo, lo + len) and converted
 * on its own; @then follows each conversion, as in psc_exit().
 */
static int driver_pages(struct wl *w, uint64_t lo, uint64_t len, uint64_t n,
			psc_then then)
{
	for (uint64_t i = 0; i < n; i++)
		if (psc_exit(w, rnd_range(w, lo, lo + len, PAGE), PAGE,
			     GMEM_SHARED, then, NULL))
			return w->error ? w->error : -EPROTO;
	return 0;
}

/*
 * tdx-boot: a TD boots.  The firmware (which accepted low RAM) maps DMA
 * bounce buffers at the start of a 5 MiB window and unmaps them, each a
 * MapGPA to shared and back: round k maps ceil(1280 / k) pages, in a
 * seeded order, so the first pages flip in every round (the hottest 1000
 * times with the default 500 rounds) and the last ones once.  Then the
 * kernel shares its SWIOTLB with one MapGPA, and drivers share 2,700 4K
 * pages of otherwise private memory.
 */
static int wl_tdx_boot(struct wl *w)
{
	uint64_t rounds = w->par->ops ? w->par->ops : w->def->default_ops;
	uint64_t nr_fw = FW_WINDOW / PAGE, *order = NULL, k;
	struct layout l;
	int ret = 0;

	if (layout(w, &l) || guest(w, 0, l.low))
		return w->error;
	order = malloc(rounds * sizeof(*order));
	if (!order)
		return fail(w, -ENOMEM, "no memory for the firmware's rounds");
	for (k = 0; k < rounds; k++)
		order[k] = k + 1;
	for (k = rounds; k > 1; k--) {
		uint64_t j = rnd_below(w, k), t = order[k - 1];

		order[k - 1] = order[j];
		order[j] = t;
	}
	for (k = 0; k < rounds && !ret; k++) {
		uint64_t len = (nr_fw + order[k] - 1) / order[k] * PAGE;

		ret = tdx_map_gpa(w, l.fw, len, GMEM_SHARED);
		if (!ret)
			ret = tdx_map_gpa(w, l.fw, len, GMEM_PRIVATE);
		if ((k & 63) == 0)
			progress(w, 0.9 * (double)k / (double)rounds);
	}
	free(order);
	if (!ret)
		ret = tdx_map_gpa(w, l.tlb, l.tlb_len, GMEM_SHARED);
	if (!ret)
		ret = driver_pages(w, l.drv, l.drv_len, DRIVER_PAGES, NULL);
	return w->error ? w->error : ret ? fail(w, ret, "tdx-boot: %s",
						 errno_word(ret)) : 0;
}

/* QEMU prefaults the range of every page state change. */
static int prefault(struct wl *w, uint64_t off, uint64_t len, void *arg)
{
	(void)arg;
	return guest(w, off, len);
}

/*
 * snp-boot: an SNP guest boots with lazy acceptance, on QEMU, which
 * prefaults the range of every page state change.  The firmware validated
 * low RAM; the kernel shares its SWIOTLB; RAM above 4 GiB is accepted as
 * the guest's allocator needs it, 4 MiB at a time from the bottom up: a
 * page state change to private (the memory is private already: no
 * attribute changes) before the guest validates it.  The first 256 MiB
 * accepted hold the drivers' 2,700 4K shared pages (tdx-boot's figure);
 * then the guest accepts @ops more chunks (default: all of its memory).
 */
static int wl_snp_boot(struct wl *w)
{
	uint64_t nr_high, nr_drv, n, i;
	struct layout l;
	int ret;

	if (layout(w, &l) || guest(w, 0, l.low))
		return w->error;
	ret = snp_psc(w, l.tlb, l.tlb_len, GMEM_SHARED, prefault, NULL);
	nr_high = (w->size - l.low) / ACCEPT_CHUNK;
	if (!ret && !nr_high)		/* no lazily accepted memory */
		ret = driver_pages(w, l.drv, l.drv_len, DRIVER_PAGES,
				   prefault);
	nr_drv = l.drv_len / ACCEPT_CHUNK;
	n = !nr_high ? 0 : nr_drv + min_u64(w->par->ops ? w->par->ops : nr_high,
					     nr_high - nr_drv);
	for (i = 0; i < n && !ret; i++) {
		uint64_t off = l.low + i * ACCEPT_CHUNK;

		ret = snp_psc(w, off, ACCEPT_CHUNK, GMEM_PRIVATE, prefault,
			      NULL);
		if (!ret && i < nr_drv)
			ret = driver_pages(w, off, ACCEPT_CHUNK,
					   DRIVER_PAGES * (i + 1) / nr_drv -
					   DRIVER_PAGES * i / nr_drv, prefault);
		if ((i & 63) == 0)
			progress(w, (double)i / (double)n);
	}
	return w->error ? w->error : ret ? fail(w, ret, "snp-boot: %s",
						 errno_word(ret)) : 0;
}

/* One 4K page the VMM mapped for the device: its VFIO pin, or none. */
struct dmap {
	uint64_t id, name;	/* name UINT64_MAX: not mapped */
};

/*
 * The VMM maps [off, off + len) for the device after it turned shared, one
 * 4K page at a time as QEMU's RamDiscardManager listener does: VFIO's
 * type1 map pins each page long-term (what VmPin counts) and maps it in
 * the IOMMU.  A pin refused (policy a) fails that page's map.  The pages
 * pinned are given to the library's IOMMU map one run at a time: it keeps
 * the entries of a given range in step with the attributes by itself, so
 * one call per run puts in what the 4K maps would.
 */
static int vmm_dma_map(struct wl *w, uint64_t off, uint64_t len,
		       struct dmap *m)
{
	uint64_t n = len / PAGE, run = 0;

	for (uint64_t i = 0; i <= n; i++) {
		bool pinned = i < n &&
			      !pin_longterm(w, off + i * PAGE, PAGE, &m[i].id,
					    &m[i].name);

		if (w->error)
			return w->error;
		if (i < n && !pinned)
			m[i].name = UINT64_MAX;
		if (pinned)
			continue;
		if (i > run && iommu(w, off + run * PAGE, (i - run) * PAGE))
			return w->error;
		run = i + 1;
	}
	return 0;
}

/*
 * Before a range turns private the VMM unmaps it from the device, page by
 * page: the pins go here; the conversion then removes the IOMMU entries
 * (the library's IOMMU map follows the attributes).
 */
static int vmm_dma_unmap(struct wl *w, uint64_t len, struct dmap *m)
{
	for (uint64_t i = 0; i < len / PAGE; i++) {
		if (m[i].name == UINT64_MAX)
			continue;
		if (unpin(w, m[i].id, m[i].name))
			return w->error;
		m[i].name = UINT64_MAX;
	}
	return 0;
}

struct tlb_maps {
	uint64_t base;
	struct dmap *m;
};

static int tlb_mapped(struct wl *w, uint64_t off, uint64_t len, void *arg)
{
	struct tlb_maps *t = arg;

	return vmm_dma_map(w, off, len, t->m + (off - t->base) / PAGE);
}

/* A coherent DMA buffer of the VFIO guest: 2^k pages, naturally aligned. */
struct vbuf {
	uint64_t off, pages;
	struct dmap map[1U << (VFIO_BUF_ORDERS - 1)];
};

struct vfio_guest {
	uint64_t win, win_pages;	/* where the buffers live */
	uint8_t *used;			/* per page of the window */
	struct vbuf *buf;
	size_t nr, cap;
	uint64_t bytes;			/* in live buffers */
};

/* The guest allocates a buffer and shares it; the VMM maps it. */
static int vbuf_new(struct wl *w, struct vfio_guest *g)
{
	uint64_t pages = 1ULL << rnd_below(w, VFIO_BUF_ORDERS), slot, i;
	struct vbuf *b;

	for (unsigned int tries = 0;; tries++) {
		if (tries == 10000)
			return fail(w, -ENOSPC, "no room for a DMA buffer");
		slot = rnd_below(w, g->win_pages / pages) * pages;
		for (i = 0; i < pages && !g->used[slot + i]; i++)
			;
		if (i == pages)
			break;
	}
	if (g->nr == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 1024;
		struct vbuf *nb = realloc(g->buf, cap * sizeof(*nb));

		if (!nb)
			return fail(w, -ENOMEM, "no memory for DMA buffers");
		g->buf = nb;
		g->cap = cap;
	}
	memset(g->used + slot, 1, pages);
	b = &g->buf[g->nr++];
	b->off = g->win + slot * PAGE;
	b->pages = pages;
	g->bytes += pages * PAGE;
	if (snp_psc(w, b->off, pages * PAGE, GMEM_SHARED, NULL, NULL))
		return w->error ? w->error : -EPROTO;
	return vmm_dma_map(w, b->off, pages * PAGE, b->map);
}

/*
 * The guest frees buffer @i: the VMM unmaps it, the guest takes it back
 * private.  EBUSY (another page's pin holds the folio): the guest keeps
 * the buffer shared and the VMM maps it again.  Return: 0 freed, 1 kept.
 */
static int vbuf_free(struct wl *w, struct vfio_guest *g, size_t i)
{
	struct vbuf *b = &g->buf[i];
	int ret;

	if (vmm_dma_unmap(w, b->pages * PAGE, b->map))
		return w->error;
	ret = snp_psc(w, b->off, b->pages * PAGE, GMEM_PRIVATE, NULL, NULL);
	if (ret == -EBUSY && !w->error)
		return vmm_dma_map(w, b->off, b->pages * PAGE, b->map) ?
		       w->error : 1;
	if (ret)
		return w->error ? w->error : ret;
	memset(g->used + (b->off - g->win) / PAGE, 0, b->pages);
	g->bytes -= b->pages * PAGE;
	*b = g->buf[--g->nr];
	return 0;
}

/*
 * vfio-snp: an SNP guest with a passthrough device, its VMM mapping only
 * shared memory for the device: 7.75% of guest memory shared (1.24 GiB of
 * 16 GiB), the SWIOTLB and, for the rest, drivers' coherent DMA buffers
 * in a window four times their size above low RAM.  Every shared page is
 * pinned and IOMMU-mapped at 4K after its conversion and unmapped before
 * it turns private.  Then the guest reallocates @ops buffers (free one,
 * allocate another), and at last shuts the device down: the VMM unmaps
 * every page.
 */
static int wl_vfio_snp(struct wl *w)
{
	uint64_t n = w->par->ops ? w->par->ops : w->def->default_ops;
	uint64_t shared = w->size / 10000 * VFIO_SHARED / PAGE * PAGE, other;
	struct vfio_guest g = { 0 };
	struct tlb_maps t = { 0 };
	struct layout l;
	uint64_t i;

	if (layout(w, &l))
		return w->error;
	other = shared > l.tlb_len ? shared - l.tlb_len : 0;
	g.win_pages = (4 * other + SZ_2M - 1) / SZ_2M * (SZ_2M / PAGE);
	if (!g.win_pages)
		g.win_pages = SZ_2M / PAGE;
	if (w->size > l.low ? g.win_pages * PAGE > w->size - l.low :
			      g.win_pages * PAGE > l.tlb)
		return fail(w, -EINVAL, "vfio-snp: no room for DMA buffers");
	g.win = w->size > l.low ? l.low : l.tlb - g.win_pages * PAGE;
	t.base = l.tlb;
	t.m = malloc(l.tlb_len / PAGE * sizeof(*t.m));
	g.used = calloc(g.win_pages, 1);
	if (!t.m || !g.used) {
		fail(w, -ENOMEM, "no memory for the VMM's maps");
		goto out;
	}
	if (guest(w, 0, l.low) ||
	    snp_psc(w, l.tlb, l.tlb_len, GMEM_SHARED, tlb_mapped, &t))
		goto out;
	progress(w, 0.3);
	while (g.bytes < other)
		if (vbuf_new(w, &g))
			goto out;
	for (i = 0; i < n && g.nr; i++) {
		int ret = vbuf_free(w, &g, (size_t)rnd_below(w, g.nr));

		if (ret < 0 || (ret == 0 && vbuf_new(w, &g)))
			goto out;
		if ((i & 63) == 0)
			progress(w, 0.4 + 0.6 * (double)i / (double)n);
	}
	/* the guest shuts the device down: the VMM unmaps all of it */
	if (vmm_dma_unmap(w, l.tlb_len, t.m))
		goto out;
	for (i = 0; i < g.nr; i++)
		if (vmm_dma_unmap(w, g.buf[i].pages * PAGE, g.buf[i].map))
			goto out;
out:
	free(g.buf);
	free(g.used);
	free(t.m);
	return w->error;
}

const struct workload workloads[] = {
	{ "tdx-boot", "TDX-like boot from published figures, 1G pages (4 GiB by "
	  "default): firmware bounce pages flipped up to 1000 times, SWIOTLB "
	  "shared in 2 MiB MapGPA chunks, 2,700 4K driver pages",
	  GMEM_1G, 4ULL << 30, GMEM_BACKING_AUTO, 500, 0, wl_tdx_boot },
	{ "snp-boot", "SNP-like boot, 1G pages (4 GiB by default): SWIOTLB shared "
	  "by page state changes, RAM above 4 GiB accepted lazily in 4 MiB "
	  "chunks, each prefaulted", GMEM_1G, 4ULL << 30, GMEM_BACKING_AUTO,
	  0, 0, wl_snp_boot },
	{ "vfio-snp", "SNP guest with a VFIO device, 1G pages (4 GiB by default): "
	  "7.75% shared, each shared 4K page pinned and IOMMU-mapped by the VMM, "
	  "2000 DMA buffers reallocated", GMEM_1G, 4ULL << 30,
	  GMEM_BACKING_AUTO, 2000, 0, wl_vfio_snp },
	{ "io-churn", "synthetic: private guest on 1G pages (2 GiB by default): "
	  "bounce buffer, virtio pages, I/O buffer churn under in-flight host I/O",
	  GMEM_1G, 2ULL << 30, GMEM_BACKING_AUTO, 4000, 0, wl_io_churn },
	{ "pkvm-io", "synthetic: 2M pages (2 GiB by default): share, pin, I/O, "
	  "unpin, unshare around every I/O, 4 in flight", GMEM_2M, 2ULL << 30,
	  GMEM_BACKING_AUTO, 20000, 0, wl_pkvm_io },
	{ "vfio-longterm", "synthetic: 1G pages (4 GiB by default): 16 MiB of DMA "
	  "buffers long-term pinned while nearby pages convert", GMEM_1G,
	  4ULL << 30, GMEM_BACKING_AUTO, 5000, 0, wl_vfio_longterm },
	{ "balloon", "synthetic: 2M pages (4 GiB by default): punch whole and "
	  "partial huge pages with I/O in flight, then touch memory again", GMEM_2M,
	  4ULL << 30, GMEM_BACKING_AUTO, 4, 0, wl_balloon },
	{ "scale", "synthetic: 1G pages, metadata only (1 TiB by default; 16 GiB "
	  "for 4k and b-eager): 10^6 4K conversions",
	  GMEM_1G, 1ULL << 40, GMEM_BACKING_NONE, 1000000, 16ULL << 30,
	  wl_scale },
};

const unsigned int nr_workloads = sizeof(workloads) / sizeof(workloads[0]);

const struct workload *workload_find(const char *name)
{
	for (unsigned int i = 0; i < nr_workloads; i++)
		if (!strcmp(workloads[i].name, name))
			return &workloads[i];
	return NULL;
}

uint64_t workload_size(const struct workload *wl, enum gmem_policy policy,
		       uint64_t asked)
{
	bool per_4k = policy == GMEM_POLICY_4K ||
		      policy == GMEM_POLICY_B_EAGER;

	if (asked)
		return asked;	/* what the user asked for, even if large */
	if (per_4k && wl->max_small_size &&
	    wl->default_size > wl->max_small_size)
		return wl->max_small_size;
	return wl->default_size;
}

/* ------------------------------------------------------------- the run */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The @q-th quantile (0..1) of sorted @v, nearest rank. */
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	return v[(k > n ? n : k) - 1];
}

static const char *backing_word(enum gmem_backing b)
{
	return b == GMEM_BACKING_NONE ? "none" : "memfd";
}

static int setup(struct wl *w, enum gmem_backing backing)
{
	int ret;

	ret = gmem_pool_create(w->huge, w->size / w->huge, backing, &w->pool);
	if (ret)
		return fail(w, ret, "pool of %" PRIu64 " x %" PRIu64
			    " bytes: %s", w->size / w->huge, w->huge,
			    errno_word(ret));
	ret = gmem_file_create(w->pool, w->size, w->policy, 0, &w->file);
	if (ret)
		return fail(w, ret, "file: %s", errno_word(ret));
	if (w->policy == GMEM_POLICY_B_ADAPTIVE && w->par->merge_delay >= 0) {
		ret = gmem_file_set_merge_delay(w->file,
					(unsigned int)w->par->merge_delay);
		if (ret)
			return fail(w, ret, "merge delay: %s", errno_word(ret));
	}
	ret = gmem_mm_create(w->pool, NULL, &w->mm);
	if (!ret)
		ret = gmem_mmap(w->mm, w->file);
	if (ret)
		return fail(w, ret, "mm: %s", errno_word(ret));
	if (w->emit) {
		/*
		 * A real backing is written as memfd: replaying the trace
		 * must not depend on the host's reserved huge pages.
		 */
		fprintf(w->emit, "pool %s %" PRIu64 " backing=%s\n",
			w->huge == GMEM_1G ? "1G" : "2M", w->size / w->huge,
			backing_word(gmem_pool_backing(w->pool)));
		fprintf(w->emit, "expect ok\nfile g 0x%" PRIx64 " policy=%s",
			w->size, policy_name(w->policy));
		if (w->policy == GMEM_POLICY_B_ADAPTIVE &&
		    w->par->merge_delay >= 0)
			fprintf(w->emit, " merge_delay=%" PRId64,
				w->par->merge_delay);
		fprintf(w->emit, "\nexpect ok\nmm vmm\nexpect ok\n"
			"mmap vmm g\nexpect ok\n");
	}
	return io_thread_start(w);
}

/* Writes the end-of-run statistics as a `stats` command and its expect. */
/*
 * The guest goes idle: the VMM asks the file to merge what may merge
 * (gmem_file_compact()).  Only b-adaptive has merges waiting; under every
 * other policy this changes nothing.  Its merges count as kernel events.
 */
static int idle(struct wl *w)
{
	int ret = gmem_file_compact(w->file);

	if (w->emit) {
		fprintf(w->emit, "compact g\n");
		emit_result(w, ret, false, 0);
	}
	if (ret)
		return fail(w, ret, "compact: %s", errno_word(ret));
	return 0;
}

static int emit_stats(struct wl *w)
{
	char keys[] = EMIT_STAT_KEYS, *save = NULL, *k;
	struct gmem_stats s;
	const char *sep = "";
	uint64_t v;
	int ret;

	if (!w->emit)
		return 0;
	ret = gmem_stats(w->pool, w->file, &s);
	if (ret)
		return fail(w, ret, "stats: %s", errno_word(ret));
	fprintf(w->emit, "stats g %s\nexpect ", EMIT_STAT_KEYS);
	for (k = strtok_r(keys, " ", &save); k; k = strtok_r(NULL, " ", &save)) {
		if (gmem_stat_get(&s, k, &v))
			return fail(w, -EPROTO, "no stat %s", k);
		fprintf(w->emit, "%s%s=%" PRIu64, sep, k, v);
		sep = " ";
	}
	fprintf(w->emit, "\ncheck\nexpect ok\n");
	return 0;
}

static void collect(struct wl *w, struct wl_result *r)
{
	struct gmem_stats s, ps;

	if (gmem_stats(w->pool, w->file, &s) ||
	    gmem_stats(w->pool, NULL, &ps)) {
		fail(w, -EPROTO, "stats failed");
		return;
	}
	r->guest_at[0] = s.guest_1g;
	r->guest_at[1] = s.guest_2m;
	r->guest_at[2] = s.guest_4k;
	r->iommu_at[0] = s.iommu_1g;
	r->iommu_at[1] = s.iommu_2m;
	r->iommu_at[2] = s.iommu_4k;
	r->meta_bytes = s.meta_bytes;
	r->vmemmap_bytes = s.vmemmap_bytes;
	r->meta_peak_bytes = s.meta_peak_bytes;
	r->vmemmap_peak_bytes = s.vmemmap_peak_bytes;
	r->conversions = s.conversions;
	r->eagain = s.eagain;
	r->ebusy = s.ebusy;
	r->eopnotsupp = ps.eopnotsupp;
	r->shatters = s.shatters;
	r->collapses = s.collapses;
	r->zaps = s.zaps;
	r->pool_pages_returned = ps.pool_returned;
	r->backing = (int)gmem_pool_backing(w->pool);
}

int workload_run(const struct workload *wl, enum gmem_policy policy,
		 const struct wl_params *par, FILE *emit,
		 struct wl_result *out)
{
	struct wl w = {
		.def = wl, .par = par, .policy = policy, .huge = wl->huge_page,
		.emit = emit,
	};
	enum gmem_backing backing;
	char check[256];
	uint64_t t0;

	memset(out, 0, sizeof(*out));
	w.size = workload_size(wl, policy, par->guest_size);
	/* the same guest for every policy: the seed and the workload only */
	w.rng = par->seed * 0x9e3779b97f4a7c15ULL;
	for (const char *c = wl->name; *c; c++)
		w.rng = (w.rng ^ (uint8_t)*c) * 0x100000001b3ULL;
	backing = par->backing >= 0 ? (enum gmem_backing)par->backing :
				      (enum gmem_backing)wl->default_backing;
	if (!w.size || w.size % w.huge) {
		fail(&w, -EINVAL, "guest size 0x%" PRIx64 " is not a multiple "
		     "of the huge page size", w.size);
		goto out;
	}
	if (emit)
		fprintf(emit, "# gmem compare --workload %s --policy %s "
			"--guest-size 0x%" PRIx64 " --seed %" PRIu64 "\n"
			"# %s\n", wl->name, policy_name(policy), w.size,
			par->seed, wl->summary);

	t0 = now_ns();
	if (setup(&w, backing) || wl->run(&w) || io_retire_all(&w) ||
	    idle(&w))
		goto out;
	/* the workload's own events, before the prefault below */
	if (gmem_stats(w.pool, NULL, &out->ev)) {
		fail(&w, -EPROTO, "stats failed");
		goto out;
	}
	/* the guest touches all of its memory, so coverage compares */
	if (guest(&w, 0, w.size))
		goto out;
	out->wall_ns = now_ns() - t0;
	if (emit_stats(&w))
		goto out;
	if (gmem_check(w.pool, check, sizeof(check)) != 0) {
		fail(&w, -EPROTO, "gmem_check: %s", check);
		goto out;
	}
	collect(&w, out);
	qsort(w.lat, w.nr_lat, sizeof(*w.lat), cmp_u64);
	out->convert_calls = w.nr_lat;
	out->convert_p50 = quantile(w.lat, w.nr_lat, 0.50);
	out->convert_p99 = quantile(w.lat, w.nr_lat, 0.99);
	out->convert_max = w.nr_lat ? w.lat[w.nr_lat - 1] : 0;
	qsort(w.klat, w.nr_lat, sizeof(*w.klat), cmp_u64);
	out->kconv_p50 = quantile(w.klat, w.nr_lat, 0.50);
	out->kconv_p99 = quantile(w.klat, w.nr_lat, 0.99);
	out->kconv_max = w.nr_lat ? w.klat[w.nr_lat - 1] : 0;
	out->pin_wait_ns = w.pin_wait_ns;
	out->ops = w.ops;
out:
	out->guest_bytes = w.size;
	out->huge_page_bytes = w.huge;
	/* stop the I/O thread before the pool goes: it may hold pins */
	io_thread_stop(&w);
	for (unsigned int i = 0; i < w.nr_io; i++)
		free(w.io[i].pages);
	if (w.pool)
		gmem_pool_destroy(w.pool);
	free(w.lat);
	free(w.klat);
	out->error = w.error;
	snprintf(out->what, sizeof(out->what), "%s", w.what);
	return w.error;
}
