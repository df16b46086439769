// SPDX-License-Identifier: MIT
/*
 * hog.c - test pools on real hugetlbfs, and the hog: a neighbour process
 * that takes every free huge page nobody has reserved (see hog.h).
 *
 * Why: a pool on hugetlbfs owns its pages only through the reservations
 * made when it mapped its memfd.  If the pool ever gives one back (a hole
 * punched in the memfd returns the page and its reservation to the host),
 * its next use of that frame takes a free page without a reservation,
 * which works on a quiet host and dies with SIGBUS once another process
 * has taken the free pages.  The hog is that other process, always there:
 * it keeps HugePages_Free - HugePages_Rsvd of the pool's size at zero, so
 * that any page the pool loses is gone at once.  Tests run one at a time,
 * so taking every free unreserved page while a test's pool exists harms
 * nothing else.
 *
 * The hog is forked before the pool is created (so it shares none of the
 * pool's memory and holds none of its files), waits until the pool exists,
 * then takes pages every HOG_INTERVAL_US, and also at once when asked
 * (hog_sweep(), after every hole punched: see fallocate() below), and
 * answers each request once it has taken what there was.  It takes a page
 * with a private anonymous MAP_HUGETLB mapping, which reserves it, and
 * MAP_POPULATE, which faults it in.  It exits when told (the socket
 * closes; hog_stop() also kills it and waits, so that its pages are free
 * when hog_stop() returns), when its parent dies (PR_SET_PDEATHSIG, and
 * the socket's end of file) or the parent changes.  The child makes only
 * system calls (no stdio, no malloc): its parent may have threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

#include "hog.h"

#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif
#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB (30 << MAP_HUGE_SHIFT)
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

/* The test switches, as the environment gives them. */
struct test_env {
	const char *backing;	/* GMEM_TEST_BACKING, or NULL */
	bool force_2m, force_1g;
	bool hog;
};

static int read_env(struct test_env *e)
{
	const char *b = getenv("GMEM_TEST_BACKING");
	const char *h = getenv("GMEM_TEST_HOG");

	memset(e, 0, sizeof(*e));
	if (b && *b) {
		e->backing = b;
		if (!strcmp(b, "hugetlb")) {
			e->force_2m = e->force_1g = true;
		} else if (!strcmp(b, "hugetlb:2M")) {
			e->force_2m = true;
		} else if (!strcmp(b, "hugetlb:1G")) {
			e->force_1g = true;
		} else {
			fprintf(stderr, "gmem: GMEM_TEST_BACKING=%s: want hugetlb, hugetlb:2M or hugetlb:1G\n",
				b);
			return -EINVAL;
		}
	}
	if (h && *h && strcmp(h, "0")) {
		if (strcmp(h, "1")) {
			fprintf(stderr, "gmem: GMEM_TEST_HOG=%s: want 1 or 0\n", h);
			return -EINVAL;
		}
		e->hog = true;
	}
	return 0;
}

static const char *size_name(uint64_t page_size)
{
	return page_size == GMEM_1G ? "1G" : "2M";
}

/* The sysfs file @name of the huge page size, into @buf. */
static void sysfs_path(char *buf, size_t len, uint64_t page_size,
		       const char *name)
{
	snprintf(buf, len, "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/%s",
		 page_size >> 10, name);
}

/* A decimal number from a sysfs file, or 0 if there is none (system
 * calls only: the hog runs it). */
static uint64_t read_count(const char *path)
{
	char buf[32];
	uint64_t n = 0;
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf));
	close(fd);
	for (ssize_t i = 0; i < len && buf[i] >= '0' && buf[i] <= '9'; i++)
		n = n * 10 + (uint64_t)(buf[i] - '0');
	return n;
}

/* ------------------------------------------------------------ the hog */

struct hog_paths {
	char free[128], resv[128];
	int map_flags;
	size_t size;
};

/* Take every free unreserved huge page there is now; they stay mapped. */
static void hog_take(const struct hog_paths *hp)
{
	uint64_t free = read_count(hp->free), resv = read_count(hp->resv);

	for (uint64_t n = free > resv ? free - resv : 0; n; n--) {
		void *m = mmap(NULL, hp->size, PROT_READ | PROT_WRITE,
			       hp->map_flags, -1, 0);

		if (m == MAP_FAILED)	/* someone else was quicker */
			break;
	}
}

/* The child: never returns. */
static void hog_main(const struct hog_paths *hp, int sock, pid_t parent)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct timespec tick = { 0, HOG_INTERVAL_US * 1000L };
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	/* Wait until the pool exists ('g'); end of file: not needed. */
	if (read(sock, &c, 1) != 1)
		_exit(0);
	for (;;) {
		hog_take(hp);
		if (c && write(sock, "a", 1) != 1)
			_exit(0);
		c = 0;
		if (ppoll(&pfd, 1, &tick, NULL) > 0) {
			if (read(sock, &c, 1) != 1)
				_exit(0);	/* stopped, or the parent died */
		}
		if (getppid() != parent)
			_exit(0);
	}
}

static pthread_mutex_t hog_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t hog_pid = -1;
static int hog_sock = -1;
static bool hog_atexit;
static atomic_bool hog_running;	/* hog_pid > 0, read without the lock */

/* Send @cmd and wait for the hog's answer; hog_lock held. */
static int hog_ask(char cmd)
{
	char a;

	if (send(hog_sock, &cmd, 1, MSG_NOSIGNAL) != 1)
		return -errno;
	for (;;) {
		ssize_t n = recv(hog_sock, &a, 1, 0);

		if (n == 1)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -ECHILD;	/* it died */
	}
}

static void hog_stop_locked(void)
{
	if (hog_pid <= 0)
		return;
	close(hog_sock);
	kill(hog_pid, SIGKILL);
	while (waitpid(hog_pid, NULL, 0) < 0 && errno == EINTR)
		;
	hog_sock = -1;
	hog_pid = -1;
	atomic_store(&hog_running, false);
}

void hog_stop(void)
{
	pthread_mutex_lock(&hog_lock);
	hog_stop_locked();
	pthread_mutex_unlock(&hog_lock);
}

/* Close every fd from @lo up but @keep (below @max if it must loop). */
static void close_from(int lo, int keep, int max)
{
#ifdef SYS_close_range
	unsigned int from = (unsigned int)(keep < lo ? lo : keep + 1);

	if ((keep <= lo || !syscall(SYS_close_range, (unsigned int)lo,
				    (unsigned int)keep - 1, 0)) &&
	    !syscall(SYS_close_range, from, ~0U, 0))
		return;
#endif
	for (int fd = lo; fd < max; fd++)
		if (fd != keep)
			close(fd);
}

/* Fork an idle hog for @page_size (any other stopped); hog_lock held. */
static int hog_spawn_locked(uint64_t page_size)
{
	struct hog_paths hp;
	struct rlimit rl;
	int sv[2], maxfd = 1024;
	pid_t parent = getpid(), pid;

	hog_stop_locked();
	memset(&hp, 0, sizeof(hp));
	sysfs_path(hp.free, sizeof(hp.free), page_size, "free_hugepages");
	sysfs_path(hp.resv, sizeof(hp.resv), page_size, "resv_hugepages");
	hp.size = (size_t)page_size;
	hp.map_flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE |
		(page_size == GMEM_1G ? MAP_HUGE_1GB : MAP_HUGE_2MB);
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < 65536)
		maxfd = (int)rl.rlim_cur;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (pid == 0) {
		/* Hold nothing of the parent's but stderr. */
		close_from(3, sv[1], maxfd);
		close(0);
		close(1);
		hog_main(&hp, sv[1], parent);
	}
	close(sv[1]);
	hog_pid = pid;
	hog_sock = sv[0];
	atomic_store(&hog_running, true);
	if (!hog_atexit)
		hog_atexit = !atexit(hog_stop);
	return 0;
}

int hog_start(uint64_t page_size)
{
	int ret;

	if (page_size != GMEM_2M && page_size != GMEM_1G)
		return -EINVAL;
	pthread_mutex_lock(&hog_lock);
	ret = hog_spawn_locked(page_size);
	if (!ret) {
		ret = hog_ask('g');
		if (ret)
			hog_stop_locked();
	}
	pthread_mutex_unlock(&hog_lock);
	return ret;
}

void hog_sweep(void)
{
	if (!atomic_load(&hog_running))
		return;
	pthread_mutex_lock(&hog_lock);
	if (hog_pid > 0 && hog_ask('s')) {
		/* It died: say so once; the run goes on without it. */
		fprintf(stderr, "gmem: the huge page hog (pid %d) is gone\n",
			(int)hog_pid);
		hog_stop_locked();
	}
	pthread_mutex_unlock(&hog_lock);
}

/* ------------------------------------------------------------ pools */

/* Free huge pages of @page_size the host has that nobody reserved. */
static uint64_t host_available(uint64_t page_size, uint64_t *free,
			       uint64_t *resv)
{
	char path[128];

	sysfs_path(path, sizeof(path), page_size, "free_hugepages");
	*free = read_count(path);
	sysfs_path(path, sizeof(path), page_size, "resv_hugepages");
	*resv = read_count(path);
	return *free > *resv ? *free - *resv : 0;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int testpool_create(uint64_t page_size, uint64_t count,
		     enum gmem_backing backing, struct gmem_pool **out)
{
	struct test_env env;
	uint64_t free = 0, resv = 0;
	bool forced, hog;
	int ret = read_env(&env);

	if (ret)
		return ret;
	forced = (backing == GMEM_BACKING_AUTO || backing == GMEM_BACKING_MEMFD) &&
		((page_size == GMEM_2M && env.force_2m) ||
		 (page_size == GMEM_1G && env.force_1g));
	if (forced)
		backing = GMEM_BACKING_HUGETLB;
	hog = env.hog && out && count &&
		(page_size == GMEM_2M || page_size == GMEM_1G) &&
		(backing == GMEM_BACKING_HUGETLB || backing == GMEM_BACKING_AUTO);

	pthread_mutex_lock(&hog_lock);
	hog_stop_locked();
	if (hog) {
		ret = hog_spawn_locked(page_size);
		if (ret) {
			pthread_mutex_unlock(&hog_lock);
			fprintf(stderr, "gmem: GMEM_TEST_HOG: cannot start the hog: %s\n",
				strerror(-ret));
			return ret;
		}
	}
	ret = gmem_pool_create(page_size, count, backing, out);
	/*
	 * Short of pages: the hog of a test process that has just ended
	 * may still be giving its pages back.  Wait a little for them.
	 */
	for (int ms = 0; ret == -ENOMEM && forced && ms < 2000 &&
	     host_available(page_size, &free, &resv) < count; ms += 10) {
		sleep_ms(10);
		if (host_available(page_size, &free, &resv) >= count)
			ret = gmem_pool_create(page_size, count, backing, out);
	}
	if (ret && forced && host_available(page_size, &free, &resv) < count) {
		hog_stop_locked();
		pthread_mutex_unlock(&hog_lock);
		fflush(stdout);
		fprintf(stderr,
			"gmem: GMEM_TEST_BACKING=%s: no hugetlb pool of %" PRIu64 " %s pages: the host has %" PRIu64 " free %s huge pages, %" PRIu64 " of them reserved (no fallback to memfd)\n",
			env.backing, count, size_name(page_size), free,
			size_name(page_size), resv);
		exit(HOG_EXIT_NO_PAGES);
	}
	if (ret || !hog || gmem_pool_backing(*out) != GMEM_BACKING_HUGETLB) {
		hog_stop_locked();
		pthread_mutex_unlock(&hog_lock);
		return ret;
	}
	ret = hog_ask('g');
	if (ret) {
		hog_stop_locked();
		pthread_mutex_unlock(&hog_lock);
		gmem_pool_destroy(*out);
		fprintf(stderr, "gmem: GMEM_TEST_HOG: the hog did not start: %s\n",
			strerror(-ret));
		return ret;
	}
	pthread_mutex_unlock(&hog_lock);
	return 0;
}

void testpool_destroy(struct gmem_pool *pool)
{
	gmem_pool_destroy(pool);
	hog_stop();
}

/*
 * A hole punched in a file returns its pages to the host at once, and the
 * process may use the same offsets again microseconds later: sooner than
 * any polling neighbour would look.  So while a hog runs, every hole this
 * process punches is followed by a sweep of the hog before the call
 * returns (holes in hugetlbfs files only), and a pool that goes on using
 * a page it gave back meets a host with no free huge page, however fast
 * it is.  This definition takes the
 * place of the C library's in the programs hog.c is linked into (the gmem
 * tool, the unit tests, the stress program); without a hog it is the
 * system call alone.
 */
int fallocate(int fd, int mode, off_t offset, off_t len)
{
	long r = syscall(SYS_fallocate, fd, mode, offset, len);
	struct statfs fs;
	int err = errno;

	if (r == 0 && (mode & FALLOC_FL_PUNCH_HOLE) &&
	    atomic_load(&hog_running) && !fstatfs(fd, &fs) &&
	    fs.f_type == HUGETLBFS_MAGIC)
		hog_sweep();
	errno = err;
	return r ? -1 : 0;
}
