/* SPDX-License-Identifier: MIT */
/*
 * ref.h - a deliberately naive reference model of gmem, for differential
 * fuzzing (tests/fuzz/fuzz.c).
 *
 * It is written from shared/TRACE.md, shared/DESIGN.md and
 * docs/DECISIONS.md alone, not from src/: plain arrays per 4 KiB page
 * (attribute, poison, host entries per mm, pin counts, guest entry level,
 * IOMMU range membership), a slot per huge page (memory instance,
 * reservation, folio structure), and every figure recomputed the slow
 * obvious way from those arrays.  Where libgmem and this model disagree,
 * the documents decide which is right.
 *
 * The interface is the trace language's: one function per command, names
 * for files, mms and pins, and a result per command that prints exactly as
 * `gmem replay` prints it (ref_res_str()).
 */
#ifndef GMEM_FUZZ_REF_H
#define GMEM_FUZZ_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ref_policy { REF_4K, REF_A, REF_B_EAGER, REF_B_LAZY, REF_B_ADAPTIVE };

/* The merge delay a b-adaptive file starts with: "default 8192"
 * (DECISIONS.md, gmem-trace(5)). */
#define REF_MERGE_DELAY_DEFAULT 8192

enum ref_kind {
	REF_OK,		/* "ok" */
	REF_ERR,	/* "err ENAME" or "err ENAME at=0x..." */
	REF_SIGBUS,	/* "sigbus" */
	REF_FAULT,	/* "fault" */
	REF_HWPOISON,	/* "hwpoison" */
	REF_BYTE,	/* "0xNN" */
};

struct ref_res {
	enum ref_kind kind;
	int err;		/* REF_ERR: a positive errno */
	bool has_at;
	uint64_t at;
	uint8_t byte;		/* REF_BYTE */
};

/* Prints @res as `gmem replay` does (TRACE.md "Output"). */
void ref_res_str(const struct ref_res *res, char *buf, size_t len);
const char *ref_errno_name(int err);

/*
 * The statistics keys that are compared: TRACE.md's list, sorted, without
 * meta_bytes (its value is implementation-specific).
 */
#define REF_NR_KEYS 22
extern const char *const ref_stat_keys[REF_NR_KEYS];
struct ref_stats {
	uint64_t v[REF_NR_KEYS];
};

struct ref;

struct ref *ref_new(void);
void ref_free(struct ref *r);

/* One function per trace command; names as in the trace. */
struct ref_res ref_pool(struct ref *r, uint64_t page_size, uint64_t count,
			bool no_backing);
/* @merge_delay: the trace's `merge_delay=N`, or -1 for none given. */
struct ref_res ref_file(struct ref *r, const char *name, uint64_t size,
			enum ref_policy pol, bool shared, int64_t merge_delay);
struct ref_res ref_close(struct ref *r, const char *file);
struct ref_res ref_mm(struct ref *r, const char *name, const char *fork);
struct ref_res ref_mmap(struct ref *r, const char *mm, const char *file);
struct ref_res ref_fault(struct ref *r, const char *mm, const char *file,
			 uint64_t off, bool w);
struct ref_res ref_write(struct ref *r, const char *mm, const char *file,
			 uint64_t off, uint8_t val);
struct ref_res ref_read(struct ref *r, const char *mm, const char *file,
			uint64_t off);
struct ref_res ref_pin(struct ref *r, const char *id, const char *mm,
		       const char *file, uint64_t off, uint64_t len,
		       bool longterm, bool exclusive);
struct ref_res ref_unpin(struct ref *r, const char *id);
struct ref_res ref_convert(struct ref *r, const char *file, uint64_t off,
			   uint64_t len, bool to_shared, bool zero);
struct ref_res ref_punch(struct ref *r, const char *file, uint64_t off,
			 uint64_t len);
/* @len: 0 for a single access (the trace's `guest f off`), else bytes. */
struct ref_res ref_guest(struct ref *r, const char *file, uint64_t off,
			 uint64_t len, bool w);
struct ref_res ref_gread(struct ref *r, const char *file, uint64_t off);
struct ref_res ref_gwrite(struct ref *r, const char *file, uint64_t off,
			  uint8_t val);
struct ref_res ref_iommu(struct ref *r, const char *file, uint64_t off,
			 uint64_t len);
struct ref_res ref_poison(struct ref *r, const char *file, uint64_t off);
struct ref_res ref_compact(struct ref *r, const char *file);

/*
 * ref_stats() - @file NULL for the pool-wide figures.
 * Return: 0, or -ENOENT (no pool, or no open file of that name).
 */
int ref_stats(struct ref *r, const char *file, struct ref_stats *out);

#endif /* GMEM_FUZZ_REF_H */
