// SPDX-License-Identifier: MIT
/*
 * test_hugetlb.c - a pool on real hugetlbfs keeps the huge pages it was
 * given for its whole life.
 *
 * A pool's page that a file punched and gave back must still be the
 * pool's when the next file uses it, even after another process has taken
 * every free huge page of the host: no reservation may be lost, no fault
 * may die with SIGBUS.  Needs root and the hugetlb sysfs files; raises
 * nr_hugepages by what it needs and restores it on exit.  Runs for 2 MiB
 * and, where the host has them, 1 GiB pages; skips (77) with the reason
 * where neither can be had.
 *
 * A file's host range (gmem_file_hva()) on hugetlbfs: one range for a file
 * whose pages were taken in turn with another file's, each page the pool's
 * memory mapped at its offset (huge-page-aligned frames of the pool's
 * hugetlbfs file), PROT_NONE again after a punch and the same address
 * mapped again when the page comes back.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

struct hsize {
	uint64_t bytes;
	char dir[96];
	long long saved;	/* nr_hugepages before the test; -1: untouched */
};

static struct hsize sizes[2] = {
	{ MB2, "/sys/kernel/mm/hugepages/hugepages-2048kB", -1 },
	{ GB1, "/sys/kernel/mm/hugepages/hugepages-1048576kB", -1 },
};

static long long read_num(const char *dir, const char *name)
{
	char path[160];
	long long v = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "re");
	if (!fp)
		return -1;
	if (fscanf(fp, "%lld", &v) != 1)
		v = -1;
	fclose(fp);
	return v;
}

static bool write_num(const char *dir, const char *name, long long v)
{
	char path[160];
	FILE *fp;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "we");
	if (!fp)
		return false;
	ok = fprintf(fp, "%lld\n", v) > 0;
	ok = fclose(fp) == 0 && ok;
	return ok;
}

/* A hog_all() process still alive (a failed check returned early). */
static pid_t live_hog;

static void restore(void)
{
	if (live_hog > 0) {
		kill(live_hog, SIGKILL);
		waitpid(live_hog, NULL, 0);
		live_hog = 0;
	}
	for (int i = 0; i < 2; i++)
		if (sizes[i].saved >= 0) {
			write_num(sizes[i].dir, "nr_hugepages", sizes[i].saved);
			sizes[i].saved = -1;
		}
}

static void on_signal(int sig)
{
	restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Pages the host holds for someone: in use plus reserved. */
static long long held_pages(const struct hsize *h)
{
	return read_num(h->dir, "nr_hugepages") -
	       read_num(h->dir, "free_hugepages") +
	       read_num(h->dir, "resv_hugepages");
}

/*
 * Another process takes every free, unreserved huge page of @h and holds
 * it until killed.  Returns its pid once it holds them, or -1.
 */
static pid_t hog_all(const struct hsize *h)
{
	int fds[2];
	pid_t pid;
	char c;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		long long n = read_num(h->dir, "free_hugepages") -
			      read_num(h->dir, "resv_hugepages");
		int lg = h->bytes == GB1 ? 30 : 21;

		close(fds[0]);
		if (n > 0 &&
		    mmap(NULL, (size_t)n * h->bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 MAP_POPULATE | (lg << MAP_HUGE_SHIFT), -1, 0) ==
		    MAP_FAILED)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], &c, 1) != 1) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		close(fds[0]);
		return -1;
	}
	close(fds[0]);
	return pid;
}

/*
 * In a child (so that a SIGBUS is a result, not the end of the test):
 * write through the file at @off and read the page's other byte back.
 */
static int use_in_child(struct gmem_mm *mm, struct gmem_file *f, uint64_t off,
			uint8_t *old)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		uint8_t b = 0xee;

		if (gmem_host_write(mm, f, off, 0xcd) ||
		    gmem_host_read(mm, f, off + 1, &b))
			_exit(3);
		_exit(b);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFSIGNALED(st))
		return -WTERMSIG(st);
	*old = (uint8_t)WEXITSTATUS(st);
	return 0;
}

/* One size: see the comment at the top.  @why gets a skip reason. */
static bool punched_page_stays_reserved(struct hsize *h, bool *skipped)
{
	struct gmem_pool *pool;
	struct gmem_file *f, *g;
	struct gmem_mm *mm;
	long long before, nr;
	uint8_t b = 0xee;
	pid_t hog;
	int ret;

	*skipped = false;
	nr = read_num(h->dir, "nr_hugepages");
	if (nr < 0) {
		printf("# %llu MiB: no hugetlb pages of this size here\n",
		       (unsigned long long)(h->bytes >> 20));
		*skipped = true;
		return true;
	}
	h->saved = nr;
	if (!write_num(h->dir, "nr_hugepages", nr + 1) ||
	    read_num(h->dir, "free_hugepages") -
	    read_num(h->dir, "resv_hugepages") < 1) {
		printf("# %llu MiB: could not reserve a huge page\n",
		       (unsigned long long)(h->bytes >> 20));
		restore();
		*skipped = true;
		return true;
	}
	CHECK_EQ(gmem_pool_create(h->bytes, 1, GMEM_BACKING_HUGETLB, &pool), 0);
	CHECK_EQ(gmem_pool_backing(pool), GMEM_BACKING_HUGETLB);
	CHECK_EQ(gmem_file_create(pool, h->bytes, GMEM_POLICY_B_LAZY, SHARED,
				  &f), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	CHECK_EQ(gmem_mmap(mm, f), 0);
	CHECK_EQ(gmem_host_write(mm, f, K4, 0xab), 0);
	CHECK_EQ(gmem_host_write(mm, f, K4 + 1, 0x5a), 0);
	before = held_pages(h);
	CHECK_EQ(gmem_punch(f, 0, h->bytes), 0);
	/* the page went back to the pool, not to the host */
	CHECK_EQ(held_pages(h), before);
	CHECK_EQ(gmem_file_close(f), 0);

	hog = hog_all(h);
	CHECK(hog > 0);
	live_hog = hog;
	CHECK_EQ(read_num(h->dir, "free_hugepages") -
		 read_num(h->dir, "resv_hugepages"), 0);
	/* a new file takes the pool's page and finds it cleared */
	CHECK_EQ(gmem_file_create(pool, h->bytes, GMEM_POLICY_B_LAZY, SHARED,
				  &g), 0);
	CHECK_EQ(gmem_mmap(mm, g), 0);
	ret = use_in_child(mm, g, K4, &b);
	kill(hog, SIGKILL);
	waitpid(hog, NULL, 0);
	live_hog = 0;
	if (ret == -SIGBUS)
		fprintf(stderr, "SIGBUS: the pool's page was not reserved\n");
	CHECK_EQ(ret, 0);
	CHECK_EQ(b, 0);		/* old content cleared */
	CHECK_EQ(gmem_file_close(g), 0);

	/* a page whose host mapping a VMM dropped (madvise through the
	 * address gmem_file_hva() gave) is cleared all the same */
	{
		uint64_t hlen;
		void *hva;

		CHECK_EQ(gmem_file_create(pool, h->bytes, GMEM_POLICY_A, 0, &g),
			 0);
		for (uint64_t o = 0; o < h->bytes; o += MB2)
			CHECK_EQ(gmem_guest_write(g, o + 7, 0xaa), 0);
		CHECK_EQ(gmem_file_hva(g, 0, &hva, &hlen), 0);
		CHECK_EQ(madvise(hva, hlen, MADV_DONTNEED), 0);
		CHECK_EQ(gmem_file_close(g), 0);
		CHECK_EQ(gmem_file_create(pool, h->bytes, GMEM_POLICY_A, SHARED,
					  &g), 0);
		CHECK_EQ(gmem_mmap(mm, g), 0);
		for (uint64_t o = 0; o < h->bytes; o += MB2) {
			CHECK_EQ(gmem_host_read(mm, g, o + 7, &b), 0);
			CHECK_EQ(b, 0);
		}
		CHECK_EQ(gmem_file_close(g), 0);
	}
	CHECK_INVARIANTS(pool);
	CHECK_BASELINE(pool);
	gmem_pool_destroy(pool);

	/* auto counts only free pages nobody reserved: with every free page
	 * reserved by another mapping, it falls back to a memfd */
	{
		int fd = memfd_create("reserve", MFD_HUGETLB |
				      (h->bytes == GB1 ? 30U : 21U) << 26);
		long long n = read_num(h->dir, "free_hugepages") -
			      read_num(h->dir, "resv_hugepages");
		void *m = MAP_FAILED;

		CHECK(fd >= 0);
		if (n > 0) {
			CHECK_EQ(ftruncate(fd, (off_t)(n * (long long)h->bytes)), 0);
			m = mmap(NULL, (size_t)n * h->bytes, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fd, 0);
			CHECK(m != MAP_FAILED);
		}
		CHECK(read_num(h->dir, "free_hugepages") > 0);
		CHECK_EQ(read_num(h->dir, "free_hugepages") -
			 read_num(h->dir, "resv_hugepages"), 0);
		CHECK_EQ(gmem_pool_create(h->bytes, 1, GMEM_BACKING_AUTO, &pool),
			 0);
		CHECK_EQ(gmem_pool_backing(pool), GMEM_BACKING_MEMFD);
		gmem_pool_destroy(pool);
		if (m != MAP_FAILED)
			munmap(m, (size_t)n * h->bytes);
		close(fd);
	}
	restore();
	return true;
}

/* Whether the host can read the byte at @a: a pipe's write copies from
 * it, and fails with EFAULT where nothing readable is mapped. */
static bool readable(const void *a)
{
	int fds[2];
	bool ok;

	if (pipe(fds))
		return false;
	ok = write(fds[1], a, 1) == 1;
	close(fds[0]);
	close(fds[1]);
	return ok;
}

/* Raise nr_hugepages by @n, or say why not (*skipped). */
static bool reserve(struct hsize *h, long long n, bool *skipped)
{
	long long nr = read_num(h->dir, "nr_hugepages");

	*skipped = true;
	if (nr < 0) {
		printf("# %llu MiB: no hugetlb pages of this size here\n",
		       (unsigned long long)(h->bytes >> 20));
		return false;
	}
	h->saved = nr;
	if (!write_num(h->dir, "nr_hugepages", nr + n) ||
	    read_num(h->dir, "free_hugepages") -
	    read_num(h->dir, "resv_hugepages") < n) {
		printf("# %llu MiB: could not reserve %lld huge pages\n",
		       (unsigned long long)(h->bytes >> 20), n);
		restore();
		return false;
	}
	*skipped = false;
	return true;
}

/*
 * See the comment at the top: a file's host range on hugetlbfs.  With
 * 1 GiB pages, two (three are seldom to be had): the file's pages are
 * taken last first, with no other file.
 */
static bool file_range_on_hugetlbfs(struct hsize *h, bool *skipped)
{
	uint64_t ps = h->bytes, len, n = h->bytes == GB1 ? 2 : 3;
	struct gmem_pool *pool;
	struct gmem_file *f, *g = NULL;
	uint8_t *base, v;
	void *p;

	if (!reserve(h, (long long)n, skipped))
		return true;
	CHECK_EQ(gmem_pool_create(ps, n, GMEM_BACKING_HUGETLB, &pool), 0);
	CHECK_EQ(gmem_pool_backing(pool), GMEM_BACKING_HUGETLB);
	CHECK_EQ(gmem_file_create(pool, 2 * ps, GMEM_POLICY_B_LAZY, 0, &f), 0);
	if (n == 3)
		CHECK_EQ(gmem_file_create(pool, ps, GMEM_POLICY_A, 0, &g), 0);
	/* in turn: f's page 1, g's page 0, f's page 0 (frames 0, 1, 2;
	 * without g, 0 and 1) */
	CHECK_EQ(gmem_guest_write(f, ps + 3, 0x11), 0);
	if (g)
		CHECK_EQ(gmem_guest_write(g, 3, 0x22), 0);
	CHECK_EQ(gmem_guest_write(f, 3, 0x33), 0);
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), 0);
	base = p;
	CHECK_EQ(len, 2 * ps);
	CHECK(((uintptr_t)base & (ps - 1)) == 0);
	CHECK_EQ(base[3], 0x33);
	CHECK_EQ(base[ps + 3], 0x11);
	CHECK_EQ(gmem_file_hva(f, ps + 3, &p, &len), 0);
	CHECK((uint8_t *)p == base + ps + 3);
	CHECK_EQ(len, ps - 3);
	/* written through the range, read through the pool's mapping */
	base[ps + 4] = 0x44;
	CHECK_EQ(gmem_guest_read(f, ps + 4, &v), 0);
	CHECK_EQ(v, 0x44);
	CHECK_INVARIANTS(pool);
	/* punched: PROT_NONE; back: the same address, a cleared page */
	CHECK_EQ(gmem_punch(f, ps, ps), 0);
	CHECK(!readable(base + ps));
	CHECK(readable(base));
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_guest_write(f, ps + 5, 0x55), 0);
	CHECK(readable(base + ps));
	CHECK_EQ(base[ps + 5], 0x55);
	CHECK_EQ(base[ps + 3], 0);
	CHECK_EQ(base[ps + 4], 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	if (g)
		CHECK_EQ(gmem_file_close(g), 0);
	CHECK_BASELINE(pool);
	gmem_pool_destroy(pool);
	restore();
	return true;
}

int main(void)
{
	unsigned int passed = 0, failed = 0, ran = 0;

	if (geteuid() != 0) {
		printf("needs root to reserve huge pages\n");
		return 77;
	}
	atexit(restore);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (int i = 0; i < 2; i++) {
		static const struct {
			const char *name;
			bool (*fn)(struct hsize *h, bool *skipped);
		} t[] = {
			{ "punched_page_stays_reserved",
			  punched_page_stays_reserved },
			{ "file_range_on_hugetlbfs", file_range_on_hugetlbfs },
		};

		for (size_t j = 0; j < sizeof(t) / sizeof(t[0]); j++) {
			bool skipped, ok = t[j].fn(&sizes[i], &skipped);

			restore();
			if (skipped)
				continue;
			ran++;
			printf("%s %s_%s\n", ok ? "PASS" : "FAIL", t[j].name,
			       i ? "1g" : "2m");
			ok ? passed++ : failed++;
		}
	}
	if (!ran) {
		printf("no huge pages could be reserved\n");
		return 77;
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
