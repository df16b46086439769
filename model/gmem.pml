/*
 * gmem.pml - a Promela model of gmem's shared/private conversion protocol
 * (policy b-lazy; with -DADAPTIVE, policy b-adaptive), checked with spin
 * by model/check.sh.
 *
 * One huge folio of NSUB = 2 subpages.  While intact it is folio INTACT;
 * once split (file_split_for() -> block_split()) it is two order-0 folios,
 * 0 and 1.  Two converter processes call gmem_convert() on one or both
 * subpages in either direction; two host processes, each with its own mm,
 * fault pages in (gmem_fault()), pin them short- or long-term (gmem_pin())
 * and unpin them (gmem_unpin()).
 *
 * Granularity.  Every critical section of file->lock is one atomic step
 * (d_step).  That is a sound reduction: f->lock is a plain mutex (nobody
 * try-locks it), every variable below except the invalidate lock and
 * merge_pending is accessed only under it (FAST: but for the lock-free
 * steps of fast pins and unpins, see model/README.md), and no section
 * blocks inside (the drain's condition wait releases the mutex and ends
 * the step).  The invalidate lock is NOT folded into those steps, because
 * file_kick_merges() try-locks it: taking, holding and releasing it are
 * separate steps, so a try-lock can observe every holder.  merge_pending is read outside f->lock
 * (file_kick_merges()), each as its own step.  See model/README.md.
 *
 * ADAPTIVE: policy b-adaptive instead (docs/DECISIONS.md, "Policy
 * b-adaptive"): a long-term pin takes the invalidate lock exclusively and
 * splits an intact block it covers in part (file_split_for_pin(): EAGAIN
 * if another pin is on it); merges wait for period ends counted in
 * conversions (file_merge_tick()) and for the huge page to have gone
 * untouched for D << backoff of them, the backoff growing with each merge
 * (file_run_merges()); gmem_file_compact() merges at once.  A
 * fifth process (ticker) converts pages of another block of the file (a
 * tick that touches nothing here) or compacts.  At the end, init compacts.
 *
 * FAST: the lock-free fast pin (like the kernel's GUP-fast) and the
 * lock-free unpin.  Every holder of the invalidate lock exclusively makes
 * the file's sequence counter f->seq odd after taking it and even again
 * before releasing it.  A short-term pin first tries, inside an RCU
 * read-side section and without any lock: s = seq (odd: slow path), read
 * its PTEs (absent: slow path), folio_try_get() each folio, re-check that
 * seq == s and the PTEs are unchanged, and keeps the references as its pin;
 * on a failed re-check it drops them (and notes a merge / wakes a waiting
 * converter under f->lock, after leaving RCU) and takes the slow path.
 * drain(), finding unexpected references, first waits for a grace period
 * (synchronize_rcu()), with f->lock dropped, and tests again; so does a
 * split that finds a reference beyond the file's.  An unpin drops its
 * references without a lock, then reads seq: odd, it takes f->lock and
 * wakes the waiter.  See model/README.md, "The fast path".
 *
 * FAST with HOLDER_GP: the handshake gmem's C code uses instead of the
 * grace periods on demand.  A fast pin or unpin first sets f->fast_used,
 * then reads seq; a holder makes seq odd, then, if fast_used is set,
 * clears it and waits for a grace period before it does anything else.
 * No decision then sees a speculative reference: drain(), the splits and
 * the undo do without grace periods, notes and wakes.  The fast pin is a
 * one-page pin (short- or long-term); the fast unpin, of a fast pin on an
 * intact folio, drops the references inside its RCU section once it has
 * read seq even, else takes the locked path.  Policy b-lazy only.
 *
 * Build-time switches (spin -D...):
 *   BROKEN_NO_REFCHECK        drain() skips the refcount/mapcount check
 *   BROKEN_NO_INVALIDATE_LOCK faults and pins skip the invalidate lock
 *   BROKEN_KICK_NO_LOOP       file_kick_merges() tests the flag only once
 *   BROKEN_KICK_SPINS         file_kick_merges() retries a failed trylock
 *   NO_ERROR_SEMANTICS        drop the EAGAIN-means-a-short-pin assertion
 *                             (HOLDER_GP: and "no holder sees a speculative
 *                             reference")
 *   NO_MERGE_FLAG_CHECK       at the end, check only that no mergeable block
 *                             is left split, not that no note was lost
 *   REACH=n                   coverage probe: fail at REACHED(n)
 *   WITH_INFINITE_TIMEOUT     converters may also pass timeout_ms < 0
 *   NO_CALL_WHILE_PINNED      a host holding a pin makes no call but its
 *                             unpin (an untimed drain then cannot deadlock
 *                             on the hazard; for the lost-wakeup checks)
 * With FAST:
 *   BROKEN_FAST_NO_RECHECK       the fast pin keeps its references without
 *                                re-checking seq and the PTEs
 *   BROKEN_FAST_UNPIN_NO_WAKE    the unpin reads seq before it drops its
 *                                references (so it may miss the waiter)
 *   BROKEN_FAST_NO_GRACE_PERIOD  drain() does not wait for a grace period
 *                                before it acts on a surplus reference
 *   BROKEN_FAST_SPLIT_NO_GRACE_PERIOD  nor does a split: a conversion's
 *                                of an intact private block, b-adaptive's
 *                                for a long-term pin
 *   BROKEN_FAST_UNDO_NO_NOTE     a fast pin that drops its references on a
 *                                folio of a split block notes no merge
 *   HOLDER_GP                    the C's handshake (above)
 *   BROKEN_HOLDER_MARK_FIRST     (HOLDER_GP) a conversion reads fast_used
 *                                before it makes seq odd
 *   BROKEN_HOLDER_UNPIN_NO_ANNOUNCE  (HOLDER_GP) the fast unpin does not set
 *                                fast_used
 * With ADAPTIVE:
 *   BROKEN_NO_SPLIT_BEFORE_PIN   a long-term pin of part of an intact block
 *                                does not split it
 *   BROKEN_SPLIT_NO_REFCHECK     ... splits it even when another pin is on it
 *   BROKEN_MERGE_IGNORES_AGE     a period end merges noted blocks whatever
 *                                their page's age (huge_aged() true)
 *   BROKEN_MERGE_DROPS_WAITING   a period end drops the notes of blocks
 *                                whose page has not aged (keep left out)
 *   BROKEN_MERGE_NO_BACKOFF      a merge does not add to the page's backoff
 *   NO_LT_PART_CHECK             drop check.c's "no long-term pin on part
 *                                of an intact folio" from the structure check
 *   MERGE_DELAY=1                D: conversions per period (0: merges at
 *                                once, as b-lazy)
 *   TICK_OPS=1                   calls of the fifth process
 * Configuration (defaults: the run check.sh makes):
 *   HOST0_OPS=2, HOST1_OPS=1  calls per host process (plus a last unpin)
 *   CONV_OPS=2                gmem_convert() calls per converter
 *   CONV1_ANY                 converter 1 may convert subpage 1 alone
 *   CONV_ANY_DIRECTION        each call picks its direction
 *   HOST_ANY_PIN              each pin picks short- or long-term
 *   INIT_PRIVATE              the block starts private, not shared
 */

#define NSUB	2		/* subpages of the huge folio */
#define INTACT	2		/* folio id of the intact block; 0, 1 once split */
#define NF	3		/* folio ids 0, 1, INTACT */
#define NHOST	2		/* faulting/pinning processes, one mm each */
#define NCONV	2		/* converter processes */

#ifndef HOST0_OPS
#define HOST0_OPS 2		/* fault/pin/unpin calls of host 0 */
#endif
#ifndef HOST1_OPS
#define HOST1_OPS 1		/* ... of host 1 */
#endif
#define HOST_OPS(h)	((h) == 0 -> HOST0_OPS : HOST1_OPS)
#ifndef CONV_OPS
#define CONV_OPS 2		/* gmem_convert() calls per converter */
#endif

#define PRIVATE	0
#define SHARED	1

/* gmem_convert() results; R_WAIT: drain() is in pthread_cond_timedwait() */
#define R_OK		0
#define R_NOCHANGE	1	/* convert_changes() false: "done" */
#define R_EBUSY		2
#define R_EAGAIN	3
#define R_WAIT		4
#define R_GP		5	/* FAST: drain() is in synchronize_rcu() */

/* FAST: a surplus reference may be a fast pin's speculative one, which
 * its holder drops or turns into a pin before it leaves its RCU section:
 * wait for a grace period (once per call; gp: done) before acting on it */
#if defined(FAST) && !defined(BROKEN_FAST_NO_GRACE_PERIOD) && !defined(HOLDER_GP)
#define GP_FIRST	(!gp)
#else
#define GP_FIRST	false
#endif
#if defined(FAST) && !defined(BROKEN_FAST_SPLIT_NO_GRACE_PERIOD) && !defined(HOLDER_GP)
#define SPLIT_GP_FIRST	(!gp)
#else
#define SPLIT_GP_FIRST	false
#endif

/* timeout_ms: 0, > 0 (bounded, nondeterministic deadline), < 0 (forever) */
#define T_NONE		0
#define T_FINITE	1
#define T_FOREVER	2

/* ------------------------------------------------------------- state */

/* f->shared: per-subpage attribute */
bit attr[NSUB];
/* the huge block's shape: intact (folio INTACT) or split (folios 0, 1) */
bool split;
/*
 * struct gfolio counts, by folio id.  refcount: the file's own reference
 * while the folio exists, one per PTE, one per pinned page, one per fast
 * pin's speculative reference (FAST, fref below) (the kernel adds
 * GUP_PIN_COUNTING_BIAS for a pin on an order-0 folio: every test here is
 * "== 1" or "== 1 + lookup", so any positive increment gives the same
 * verdicts).  mapcount: PTEs.  pincount: pinned pages.  lt: fo->longterm.
 */
byte ref[NF];
byte map[NF];
byte pinc[NF];
byte lt[NF];
/* host page tables: pte[h * NSUB + s] = folio id + 1 of mm h's PTE, or 0 */
byte pte[NHOST * NSUB];
/* pin records (struct gpin, its segments): pinf[h * NSUB + s] = folio id + 1
 * of the segment holding page s of host h's pin, or 0; pinlt[h]: long-term */
byte pinf[NHOST * NSUB];
bit pinlt[NHOST];

/* f->inval: the writer-preferring rwlock; inv_writer = holder's _pid + 1 */
byte readers;
byte inv_writer;
byte wwait;			/* writers blocked in pthread_rwlock_wrlock() */
/* f->lock (holder's _pid + 1; always 0 between steps, kept for asserts) */
byte flock;
/* f->pin_wait: at most one waiter (it holds the invalidate lock) */
bool cv_waiting;
bool cv_sig;
/* b-lazy merges: f->merge_todo (one block: a flag) and f->merge_pending */
bool merge_todo;
bool merge_pending;
/* converters that have returned from all their calls (liveness) */
byte conv_done;

#ifdef FAST
/* f->seq: odd while a holder of the invalidate lock exclusively is inside.
 * Kept as its parity (seq_odd) and, for each host inside a fast pin's RCU
 * section, whether seq has changed since the host's snapshot s (seqchg):
 * seq only grows, so "seq == s" is exactly !seqchg.  in_rcu[h]: host h is
 * inside rcu_read_lock().  fref[h * NSUB + s]: folio id + 1 of the
 * speculative reference host h holds for page s (taken, not yet a pin). */
bit seq_odd;
bit seqchg[NHOST];
bit in_rcu[NHOST];
byte fref[NHOST * NSUB];
#endif
#ifdef HOLDER_GP
#ifndef FAST
#error "HOLDER_GP needs FAST"
#endif
#ifdef ADAPTIVE
#error "HOLDER_GP is modelled under policy b-lazy only"
#endif
/* f->fast_used: a fast pin or unpin has run since a holder last waited */
bit fast_used;
#endif

#ifndef MERGE_DELAY
#define MERGE_DELAY 1		/* D: ticks (conversions) per period */
#endif
#ifndef TICK_OPS
#define TICK_OPS 1		/* calls of the ticker process */
#endif
#ifndef MERGE_BACKOFF_MAX
#define MERGE_BACKOFF_MAX 16	/* folio.c: the most a page's wait doubles */
#endif
#ifdef ADAPTIVE
/* b-adaptive's merge hysteresis: f->merge_clock modulo D (clk: a period
 * ends when it wraps to 0); the huge page's age, f->merge_clock -
 * h->touched (ticks since file_note_merge() last touched it); and its
 * h->backoff (merges at period ends, up to MERGE_BACKOFF_MAX) */
byte clk;
byte age;
byte backoff;
/* Ghosts, by the design's definitions (docs/DECISIONS.md), for the
 * hysteresis checks: gage, ticks since the last touch of the page (a
 * conversion that overlaps it and finds pages to change, or an unpin of a
 * page in its split block); gback, its merges at period ends. */
byte gage;
byte gback;
#ifdef FAST
/* ghost: host h's unpin (or undone fast pin) has dropped references on a
 * split block and not yet noted the merge (the note, under f->lock, is
 * next) */
bit uflight[NHOST];
#define UNPIN_IN_FLIGHT	(uflight[0] || uflight[1])
#else
#define UNPIN_IN_FLIGHT	false
#endif
#endif

/* Scratch of one d_step (loop counters, a folio id, drain()'s offending
 * folio): written before read inside one indivisible step and zeroed at
 * its end (CHECK), so they never split states.  (Not "hidden": pan's BFS,
 * used for shortest counterexamples, refuses hidden variables.) */
byte i, k, F, bad;

/* ------------------------------------------------------------ macros */

/* folio_lookup(): the folio holding subpage s */
#define FID(s)		(split -> (s) : INTACT)
/* page s lies in the call's range [lo, hi] (locals of the caller) */
#define IN(s)		(lo <= (s) && (s) <= hi)
/* convert_changes() for the caller's lo, hi, to */
#define CHANGES		((IN(0) && attr[0] != to) || (IN(1) && attr[1] != to))
/* drain_next(): folio F holds a shared page of the range */
#define IN_DRAIN(F)	((F) == INTACT -> \
			 (!split && ((IN(0) && attr[0] == SHARED) || \
				     (IN(1) && attr[1] == SHARED))) : \
			 (split && IN(F) && attr[F] == SHARED))
/* folio_has_unexpected_refs(): refcount with our lookup ref != file + lookup */
#ifdef BROKEN_NO_REFCHECK
#define UNEXPECTED(F)	false
#else
#define UNEXPECTED(F)	(map[F] != 0 || ref[F] + 1 != 2)
#endif
/* small_quiet(): only the file's reference */
#define QUIET(F)	(ref[F] == 1 && map[F] == 0)
#define PINNED(h)	(pinf[(h) * NSUB] != 0 || pinf[(h) * NSUB + 1] != 0)
/* a split block that may merge now: uniform (block_mergeable()), and its
 * parts hold only the file's reference (small_quiet()) */
#define MERGEABLE	(split && attr[0] == attr[1] && QUIET(0) && QUIET(1))
/* b-adaptive's promise: a conversion's EBUSY has a long-term pin on a page
 * of its own range [lo, hi] */
#define LT_AT(h, s)	(pinlt[h] && pinf[(h) * NSUB + (s)] != 0 && IN(s))
#define LT_IN_RANGE	(LT_AT(0, 0) || LT_AT(0, 1) || LT_AT(1, 0) || LT_AT(1, 1))

/* The safety rule: no host PTE and no pin on a private subpage. */
#define PTE_PRIV(i)	(pte[i] != 0 && attr[(i) % NSUB] == PRIVATE)
#define PIN_PRIV(i)	(pinf[i] != 0 && attr[(i) % NSUB] == PRIVATE)
#define NO_PRIVATE_ACCESS \
	(!PTE_PRIV(0) && !PTE_PRIV(1) && !PTE_PRIV(2) && !PTE_PRIV(3) && \
	 !PIN_PRIV(0) && !PIN_PRIV(1) && !PIN_PRIV(2) && !PIN_PRIV(3))

/* Structure (mm_ok(), folio_structure_ok()): every PTE and pin segment
 * points at the page's current folio (never split or merged under them),
 * an intact b-lazy folio has one attribute, and the counts add up. */
#define PTE_CUR(i)	(pte[i] == 0 || pte[i] == FID((i) % NSUB) + 1)
#define PIN_CUR(i)	(pinf[i] == 0 || pinf[i] == FID((i) % NSUB) + 1)
#define NPTE(F)		((pte[0] == (F) + 1) + (pte[1] == (F) + 1) + \
			 (pte[2] == (F) + 1) + (pte[3] == (F) + 1))
#define NPIN(F)		((pinf[0] == (F) + 1) + (pinf[1] == (F) + 1) + \
			 (pinf[2] == (F) + 1) + (pinf[3] == (F) + 1))
#define NLT(F)		(pinlt[0] * ((pinf[0] == (F) + 1) + (pinf[1] == (F) + 1)) + \
			 pinlt[1] * ((pinf[2] == (F) + 1) + (pinf[3] == (F) + 1)))
#define LIVE(F)		((F) == INTACT -> !split : split)
#ifdef FAST
#define NFREF(F)	((fref[0] == (F) + 1) + (fref[1] == (F) + 1) + \
			 (fref[2] == (F) + 1) + (fref[3] == (F) + 1))
#else
#define NFREF(F)	0
#endif
#define COUNTS_OK(F)	(ref[F] == LIVE(F) + NPTE(F) + NPIN(F) + NFREF(F) && \
			 map[F] == NPTE(F) && pinc[F] == NPIN(F) && lt[F] == NLT(F))
/* b-adaptive (check.c, pin_visit()): no long-term pin holds part of an
 * intact folio (NO_LT_PART_CHECK: not checked) */
#if defined(ADAPTIVE) && !defined(NO_LT_PART_CHECK)
#define LT_PART(h)	(!split && pinlt[h] && \
			 ((pinf[(h) * NSUB] != 0) != (pinf[(h) * NSUB + 1] != 0)))
#define ADAPTIVE_OK	(!LT_PART(0) && !LT_PART(1))
#else
#define ADAPTIVE_OK	true
#endif
#define STRUCTURE_OK \
	(PTE_CUR(0) && PTE_CUR(1) && PTE_CUR(2) && PTE_CUR(3) && \
	 PIN_CUR(0) && PIN_CUR(1) && PIN_CUR(2) && PIN_CUR(3) && \
	 (split || attr[0] == attr[1]) && \
	 COUNTS_OK(0) && COUNTS_OK(1) && COUNTS_OK(INTACT) && ADAPTIVE_OK)

/* Coverage probes: with -DREACH=n, reaching REACHED(n) fails an assertion,
 * so pan shows that the marked behaviour happens (check.sh --full). */
#ifndef REACH
#define REACH 0
#endif
#define REACHED(n)	assert(REACH != (n))

/* Checked at the end of every step that changes the file (the safety rule
 * is also checked in every state by the LTL claim "safety", in
 * check.sh --full). */
#define CHECK	assert(NO_PRIVATE_ACCESS); assert(STRUCTURE_OK); \
		i = 0; k = 0; F = 0; bad = 0

/* ------------------------------------------- the invalidate lock (file.c) */

/* invalidate_lock_shared(): pthread_rwlock_rdlock, writers preferred */
inline rdlock()
{
#ifndef BROKEN_NO_INVALIDATE_LOCK
	atomic { inv_writer == 0 && wwait == 0 -> readers++ }
#else
	skip
#endif
}

/* invalidate_unlock_shared(), before its file_kick_merges() */
inline rdunlock()
{
#ifndef BROKEN_NO_INVALIDATE_LOCK
	readers--
#else
	skip
#endif
}

/* invalidate_lock(): pthread_rwlock_wrlock, inside an atomic sequence.
 * Free: taken at once.  Held: the writer queues (new readers now wait:
 * writers are preferred) and takes it when it is free (the atomic sequence
 * ends while the guard blocks). */
inline wrlock()
{
	if
	:: readers == 0 && inv_writer == 0 ->
		inv_writer = _pid + 1
	:: else ->
		wwait++;
		readers == 0 && inv_writer == 0 ->
			inv_writer = _pid + 1;
			wwait--
	fi
}

/* FAST: seq++ by a holder of the invalidate lock exclusively, right after
 * taking it (odd) and right before releasing it (even).  Folded into the
 * step that takes or releases the lock: only fast pins and unpins read seq,
 * and they never look at the lock.  SEQ_BUMP brings its own separator and
 * is empty without FAST (a skip would add a step to every trail). */
#ifdef FAST
#define SEQ_BUMP	seq_odd = 1 - seq_odd; \
			seqchg[0] = (in_rcu[0] -> 1 : seqchg[0]); \
			seqchg[1] = (in_rcu[1] -> 1 : seqchg[1]);
/* synchronize_rcu() has returned: no fast pin is inside its RCU section
 * (stronger than "none that entered before the grace period began", and
 * the same here: a fast pin that enters while seq is odd leaves at once) */
#define RCU_IDLE	(in_rcu[0] == 0 && in_rcu[1] == 0)
#else
#define SEQ_BUMP
#endif

/* HOLDER_GP, invalidate_lock_mark(): after seq++ (odd), a holder reads
 * and clears fast_used (hgp: a local of the holder's process); set, it
 * waits for a grace period.  The wait is folded into the guard of the
 * holder's first f->lock section (HOLDER_IDLE): once it has begun, a fast
 * path that enters sees seq odd and leaves in the same step. */
#ifdef HOLDER_GP
#define HOLDER_MARK	hgp = fast_used; fast_used = 0;
#define HOLDER_IDLE	(!hgp || RCU_IDLE)
/* ... and then no decision of the holder sees a speculative reference
 * (not checked with NO_ERROR_SEMANTICS) */
#ifndef NO_ERROR_SEMANTICS
#define HOLDER_EXACT	assert(fref[0] == 0 && fref[1] == 0 && fref[2] == 0 && fref[3] == 0);
#else
#define HOLDER_EXACT
#endif
#define HOLDER_DONE	hgp = 0; HOLDER_EXACT
#else
#define HOLDER_EXACT
#define HOLDER_MARK
#define HOLDER_IDLE	true
#define HOLDER_DONE
#endif

/* ------------------------------------------------- merges (folio.c, file.c) */

/* file_note_merge(): remember the block (f->merge_todo); merge_pending =
 * true (release).  b-adaptive with a delay: a touch instead (the huge
 * page's wait starts again), and nothing is pending: merges wait for a
 * period's end. */
inline note_merge()
{
	merge_todo = true;
#if !defined(ADAPTIVE) || MERGE_DELAY == 0
	merge_pending = true
#else
	age = 0			/* h->touched = f->merge_clock */
#endif
}

/* try_merge_2m() -> block_unsplit(): no PTE, no pin on either part (they
 * hold only the file's reference), one attribute */
inline merge_block()
{
	ref[0] = 0;
	ref[1] = 0;
	ref[INTACT] = 1;
	split = false;
	if
	:: attr[0] == PRIVATE -> REACHED(8)
	:: else
	fi;
	printf("  merge: the block is intact again\n")
}

#ifndef ADAPTIVE
/* file_run_merges() -> try_merge_2m() -> block_unsplit().  Context:
 * invalidate lock exclusive, f->lock. */
inline run_merges(now, compact)
{
	assert(inv_writer == _pid + 1 && flock == _pid + 1);
	merge_pending = false;
	if
	:: merge_todo && split && attr[0] == attr[1] && QUIET(0) && QUIET(1) ->
		merge_block()
	:: else
	fi;
	merge_todo = false
}
#else
/* the ghosts: a touch of the page by the design's definition, a tick */
#if MERGE_DELAY > 0
#define GTOUCH		gage = 0
#define GTICK		gage = (gage < 255 -> gage + 1 : gage)
#else
#define GTOUCH		skip
#define GTICK		skip
#endif
/* what the design allows: merge once untouched for D << merges ticks */
#define GAGED		(gage >= (MERGE_DELAY << gback))
/* huge_aged(): the page has not been touched for D << backoff ticks */
#ifdef BROKEN_MERGE_IGNORES_AGE
#define AGED		true
#else
#define AGED		(age >= (MERGE_DELAY << backoff))
#endif

/*
 * file_run_merges(), b-adaptive.  @now: a period ended (f->merge_now, set
 * by file_merge_tick()); @compact: gmem_file_compact() (f->merge_compact).
 *   not a period end, not compact: nothing (the note waits);
 *   compact: every block that may merge, run_merges_in(f, 0, nr_pages);
 *     the notes are dropped (merge_todo = keep, empty);
 *   D = 0: the noted block, now, as b-lazy;
 *   a period end: run_merges_aged() over the noted range: a split block
 *     whose page has not aged keeps its note; one that has is tried, and a
 *     merge there adds one to the page's backoff; the note goes.
 * Context: invalidate lock exclusive, f->lock.
 */
inline run_merges(now, compact)
{
	assert(inv_writer == _pid + 1 && flock == _pid + 1);
	merge_pending = false;
	if
	:: compact ->
		if
		:: MERGEABLE -> REACHED(14); merge_block()
		:: else
		fi;
		merge_todo = false
#if MERGE_DELAY == 0
	:: !compact ->
		if
		:: merge_todo && MERGEABLE -> merge_block()
		:: else
		fi;
		merge_todo = false
#else
	:: !compact && !(now) -> skip
	:: !compact && (now) ->
		if
		:: merge_todo && split && !AGED ->
			REACHED(15)	/* not aged: the note is kept */
#ifdef BROKEN_MERGE_DROPS_WAITING
			; merge_todo = false
#endif
		:: merge_todo && split && AGED ->
			if
			:: MERGEABLE ->
				/* no early merge: the page has waited as long
				 * as the design asks */
				assert(GAGED);
				REACHED(13);
				merge_block();
#ifndef BROKEN_MERGE_NO_BACKOFF
				if
				:: backoff < MERGE_BACKOFF_MAX -> backoff++
				:: else
				fi;
#endif
				gback = (gback < MERGE_BACKOFF_MAX -> gback + 1 : gback)
			:: else
			fi;
			merge_todo = false
		:: else ->
			merge_todo = false	/* intact, or not noted */
		fi;
		/* no late merge: a block that may merge, in a page that has
		 * waited as long as the design asks, has merged (FAST: unless
		 * an unpin has dropped its references and not yet noted) */
		assert(!(MERGEABLE && GAGED) || UNPIN_IN_FLIGHT)
#endif
	fi
}
#endif

/* file_merge_tick(): a conversion that found pages to change ticks the
 * file's clock (the page ages); every D ticks a period ends (clk == 0) */
#if defined(ADAPTIVE) && MERGE_DELAY > 0
#define MERGE_TICK	clk = (clk + 1) % MERGE_DELAY; \
			age = (age < 255 -> age + 1 : age); \
			GTICK
#define PERIOD_END	(clk == 0)
#else
#define MERGE_TICK	skip
#define PERIOD_END	false
#endif

/*
 * file_kick_merges(): called after every release of the invalidate lock
 * and by a gmem_unpin() that noted a merge.  While merge_pending: try-lock
 * the invalidate lock exclusively; on failure return (its holder kicks on
 * release); else run the merges under f->lock, release, and test the flag
 * again.
 */
inline kick_merges()
{
	do
	:: !merge_pending -> break		/* seq_cst load */
	:: merge_pending ->
		if
		:: atomic { readers == 0 && inv_writer == 0 ->
				inv_writer = _pid + 1;	/* trywrlock ok */
				SEQ_BUMP
				HOLDER_MARK
				printf("  P%d kick: trywrlock ok, runs merges\n", _pid) }
			d_step {
				flock == 0 && HOLDER_IDLE -> flock = _pid + 1;
				HOLDER_DONE
				if
				:: split && attr[0] == attr[1] && QUIET(0) && QUIET(1) ->
					REACHED(6)	/* a noted merge runs here */
				:: else
				fi;
				run_merges(false, false);
				CHECK;
				flock = 0
			};
			atomic {
				SEQ_BUMP
				inv_writer = 0;		/* __invalidate_unlock() */
				printf("  P%d kick: releases the lock\n", _pid)
			}
#ifdef BROKEN_KICK_NO_LOOP
			; break
#endif
		/* trywrlock fails: held, or (glibc, writers preferred) a
		 * writer is queued and will hold it */
		:: atomic { readers > 0 || inv_writer != 0 || wwait > 0 ->
			printf("  P%d kick: trywrlock fails, leaves it to the holder\n", _pid);
			if
			:: readers > 0 -> REACHED(4)		/* a fault/pin holds it */
			:: readers == 0 && inv_writer == 0 -> REACHED(5) /* a queued writer */
			:: else
			fi };
#ifndef BROKEN_KICK_SPINS
			break
#else
			skip		/* busy-wait: try again */
#endif
		fi
	od
}

/* ------------------------------------------------------- folio.c, mm.c */

/* block_split(): the intact folio must hold only the file's reference */
inline block_split()
{
	assert(ref[INTACT] == 1 && map[INTACT] == 0);	/* GM_BUG_ON */
	ref[INTACT] = 0;
	ref[0] = 1;
	ref[1] = 1;
	split = true;
	printf("  split: the block becomes two 4K folios\n")
}

/* zap_range() over the pages of folio F, in every mm */
inline zap_folio(F)
{
	for (i : 0 .. NHOST * NSUB - 1) {
		if
		:: pte[i] != 0 && (F == INTACT || F == i % NSUB) ->
			assert(pte[i] == F + 1);
			printf("  zap: mm %d page %d\n", i / NSUB, i % NSUB);
			pte[i] = 0;
			map[F]--;
			ref[F]--		/* folio_put() */
		:: else
		fi
	}
}

/* ----------------------------------------------- gmem_convert() (file.c) */

/* drain(), first loop: zap every folio of the drain set */
inline drain_zap()
{
	assert(inv_writer == _pid + 1);		/* assert_invalidate_exclusive */
	for (F : 0 .. NF - 1) {
		if
		:: IN_DRAIN(F) -> zap_folio(F)
		:: else
		fi
	}
}

/* drain(), second loop: the first folio of the drain set with a
 * long-term pin (offset order: 0, 1 when split; INTACT when not) */
inline first_longterm()
{
	bad = 0;
	for (F : 0 .. NF - 1) {
		if
		:: bad == 0 && IN_DRAIN(F) && lt[F] > 0 -> bad = F + 1
		:: else
		fi
	}
}

/* drain(), the wait loop's test: the first folio with unexpected refs */
inline first_unexpected()
{
	bad = 0;
	for (F : 0 .. NF - 1) {
		if
		:: bad == 0 && IN_DRAIN(F) && UNEXPECTED(F) -> bad = F + 1
		:: else
		fi
	}
}

/* Prepare (file_split_for()) and commit (rs_add()/rs_remove()): b-lazy
 * splits the intact block when the range covers it in part and changes it
 * (only called when CHANGES). */
inline commit()
{
	if
	:: !split && !(lo == 0 && hi == NSUB - 1) ->
		if
		:: to == SHARED -> REACHED(7)	/* an intact private block splits */
		:: else
		fi;
		block_split()
	:: else
	fi;
	if
	:: IN(0) -> attr[0] = to
	:: else
	fi;
	if
	:: IN(1) -> attr[1] = to
	:: else
	fi
	/* gmap_remove(), iommu_relevel(): guest/IOMMU maps, not modelled */
}

/* drain()'s loop body: done, EAGAIN, or wait (and the commit on success) */
inline drain_decide()
{
	first_unexpected();
	if
	:: bad == 0 ->
		commit();
		ret = R_OK
	:: bad != 0 && GP_FIRST ->
		ret = R_GP;		/* synchronize_rcu(), then test again */
		if
		:: NFREF(bad - 1) > 0 -> REACHED(18)	/* a speculative ref */
		:: else
		fi
	:: bad != 0 && !GP_FIRST && (tmo == T_NONE || expired) ->
		/* DESIGN: EAGAIN means a short-term pin outlived the timeout;
		 * zapped PTEs cannot come back (refaults block) and no new
		 * long-term pin can appear (it would have been EBUSY) */
#ifndef NO_ERROR_SEMANTICS
		assert(map[bad - 1] == 0 && lt[bad - 1] == 0 && pinc[bad - 1] > 0);
#endif
		ret = R_EAGAIN
	:: else ->
		ret = R_WAIT
	fi
}

/* private -> shared: no drain; a split of the intact block (commit())
 * needs the file's reference alone (FAST: a speculative one may be on it:
 * wait for a grace period first) */
inline shared_decide()
{
#ifdef FAST
	if
	:: !split && !(lo == 0 && hi == NSUB - 1) && ref[INTACT] != 1 &&
	   SPLIT_GP_FIRST ->
		REACHED(20);
		ret = R_GP
	:: else ->
		commit();
		ret = R_OK
	fi
#else
	commit();
	ret = R_OK
#endif
}

/* The end of a f->lock section of gmem_convert(): on failure nothing
 * changed; "merge:" note and run merges (not on the "done:" path); either
 * unlock f->lock, or wait on pin_wait (which unlocks it). */
inline convert_section_end()
{
	if
	:: ret == R_EBUSY || ret == R_EAGAIN ->
		assert(attr[0] == a0 && attr[1] == a1)	/* all or nothing */
	:: else
	fi;
	if
	:: ret == R_OK || ret == R_EBUSY || ret == R_EAGAIN ->
#ifdef ADAPTIVE
		GTOUCH;			/* the range overlaps the block */
#endif
		note_merge();		/* file_note_merge() */
		MERGE_TICK;		/* file_merge_tick() */
		run_merges(PERIOD_END, false)	/* file_run_merges() */
	:: else
	fi;
	CHECK;
	if
	:: ret == R_WAIT -> cv_waiting = true; cv_sig = false;
		printf("conv%d: waits on pin_wait (f->lock dropped)\n", c)
	:: ret == R_GP ->
		printf("conv%d: synchronize_rcu() (f->lock dropped)\n", c)
	:: else ->
		printf("conv%d: convert [%d,%d] to ", c, lo, hi);
		if
		:: to == PRIVATE -> printf("private: ")
		:: else -> printf("shared: ")
		fi;
		if
		:: ret == R_OK -> printf("ok\n")
		:: ret == R_NOCHANGE -> printf("ok (no change)\n")
		:: ret == R_EBUSY -> printf("EBUSY\n"); REACHED(1)
		:: ret == R_EAGAIN -> printf("EAGAIN\n"); REACHED(2)
		fi
	fi;
	flock = 0
}

/* drain() woken (broadcast or deadline): relock f->lock and test again */
inline convert_rewake()
{
	flock = _pid + 1;
	HOLDER_EXACT
	cv_waiting = false;
	cv_sig = false;
	drain_decide();
	if
	:: ret == R_OK && !expired -> REACHED(3)	/* an unpin let it go */
	:: else
	fi;
	convert_section_end()
}

proctype converter(byte c)
{
	byte n, lo, hi, to, ret, tmo;
	bit a0, a1;
	bool expired;
	bool gp;		/* FAST: this call has waited for a grace period */
#ifdef HOLDER_GP
	bit hgp;		/* ... must wait for one before it goes on */
#endif

	do
	:: n == CONV_OPS -> break
	:: else ->
		atomic {
			/* the call.  Range: converter 0 converts subpage 0
			 * (4K-exact once split; splits an intact folio);
			 * converter 1 both subpages (the whole block: merges
			 * and splits happen around it), or with CONV1_ANY
			 * subpage 1 or both, chosen at its first call.
			 * Direction: to private, then back to shared, ...
			 * (CONV_ANY_DIRECTION: either, each call). */
			if
			:: n == 0 && c == 0 -> lo = 0; hi = 0
			:: n == 0 && c == 1 -> lo = 0; hi = 1
#ifdef CONV1_ANY
			:: n == 0 && c == 1 -> lo = 1; hi = 1
#endif
			:: n != 0 -> skip		/* same range again */
			fi;
#ifdef CONV_ANY_DIRECTION
			if
			:: to = PRIVATE
			:: to = SHARED
			fi;
#else
			to = (n % 2 == 0 -> PRIVATE : SHARED);
#endif
			/* timeout_ms > 0 with a nondeterministic deadline: the
			 * deadline may pass before anyone else runs, so this
			 * covers timeout_ms == 0 too */
			if
			:: tmo = T_FINITE
#ifdef WITH_INFINITE_TIMEOUT
			:: tmo = T_FOREVER
#endif
			fi;
			/* file_enter() -> invalidate_lock() */
			wrlock();
#ifndef BROKEN_HOLDER_MARK_FIRST
			SEQ_BUMP
			HOLDER_MARK
#else
			HOLDER_MARK	/* reads fast_used too early */
#endif
			printf("conv%d: invalidate lock exclusive (P%d)\n", c, _pid)
		};
#ifdef BROKEN_HOLDER_MARK_FIRST
		atomic { SEQ_BUMP printf("conv%d: seq odd\n", c) };
#endif

		/* pthread_mutex_lock(&f->lock) ... */
		d_step {
			flock == 0 && HOLDER_IDLE -> flock = _pid + 1;
			HOLDER_DONE
			a0 = attr[0];
			a1 = attr[1];
			if
			:: !CHANGES -> ret = R_NOCHANGE		/* goto done */
			:: else ->
				if
				:: to == PRIVATE ->
					/* drain(): zap, EBUSY, wait */
					drain_zap();
					first_longterm();
					if
					:: bad != 0 -> ret = R_EBUSY;
#ifdef ADAPTIVE
						/* b-adaptive: never for a long-term
						 * pin outside the range */
						assert(LT_IN_RANGE)
#else
						skip
#endif
					:: else -> drain_decide()
					fi
				:: else ->
					/* private -> shared: no check */
					shared_decide()
				fi
			fi;
			convert_section_end()
		};

		/* drain(): pthread_cond_timedwait() until no unexpected refs */
		do
		:: ret != R_WAIT && ret != R_GP -> break
#ifdef FAST
		:: ret == R_GP ->
			/* synchronize_rcu() returns; relock f->lock, test again */
			d_step { RCU_IDLE && flock == 0 ->
				flock = _pid + 1;
				gp = true;
				printf("conv%d: grace period over, tests again\n", c);
				if
				:: to == PRIVATE -> drain_decide()
				:: else -> shared_decide()
				fi;
				convert_section_end() }
#endif
		:: ret == R_WAIT ->
			if
			:: d_step { cv_sig && flock == 0 ->	/* broadcast */
					printf("conv%d: woken by an unpin\n", c);
					convert_rewake() }
			:: d_step { tmo == T_FINITE && flock == 0 ->
					expired = true;		/* deadline */
					printf("conv%d: deadline passes\n", c);
					convert_rewake() }
			fi
		od;

		/* ... pthread_mutex_unlock(&f->lock); invalidate_unlock():
		 * release (and forget the call's arguments), then kick */
		atomic {
			SEQ_BUMP
			inv_writer = 0;
			printf("conv%d: releases the invalidate lock\n", c);
			to = 0; ret = 0; tmo = 0;
			a0 = 0; a1 = 0; expired = false; gp = false;
			n++
		};
		kick_merges()
		/* gmem_convert() returns */
	od;
	conv_done++
}

/* ------------------------------------- host faults and pins (mm.c, gup.c) */

/* gmem_unpin(): f->lock only, never the invalidate lock.  It notes a
 * merge only if a pinned folio lies in a split block (pin_may_merge():
 * not INTACT), and then the caller runs file_kick_merges() (kick) */
inline unpin_locked()
{
	d_step {
		PINNED(h) && flock == 0 -> flock = _pid + 1;
		for (k : 0 .. NSUB - 1) {
			if
			:: pinf[h * NSUB + k] != 0 ->
				F = pinf[h * NSUB + k] - 1;	/* folio_unpin() */
				if
				:: F != INTACT -> kick = true	/* pin_may_merge() */
#ifdef ADAPTIVE
					; GTOUCH	/* a page of a split block */
#endif
				:: else
				fi;
				ref[F]--;
				pinc[F]--;
				lt[F] = lt[F] - pinlt[h];
				pinf[h * NSUB + k] = 0
			:: else
			fi
		}
		pinlt[h] = 0;
		if
		:: kick ->
			printf("host%d: unpin (merge noted, broadcast)\n", h);
			note_merge()			/* file_note_merge() */
		:: else ->
			printf("host%d: unpin (intact: no merge noted, broadcast)\n", h)
		fi;
		if
		:: cv_waiting -> cv_sig = true		/* pthread_cond_broadcast */
		:: else
		fi;
		CHECK;
		flock = 0
	}
}

#ifdef FAST
/* FAST, gmem_unpin(): drop the pin's references without a lock (atomics:
 * folio_unpin()), then read seq.  Odd: a holder of the invalidate lock
 * exclusively may be waiting for them: take f->lock and broadcast.  A
 * pinned folio in a split block: take f->lock and note the merge (then
 * the caller kicks).  BROKEN_FAST_UNPIN_NO_WAKE reads seq first. */
inline unpin_drop()
{
	for (k : 0 .. NSUB - 1) {
		if
		:: pinf[h * NSUB + k] != 0 ->
			F = pinf[h * NSUB + k] - 1;	/* folio_unpin() */
			if
			:: F != INTACT -> kick = true	/* pin_may_merge() */
			:: else
			fi;
			ref[F]--;
			pinc[F]--;
			lt[F] = lt[F] - pinlt[h];
			pinf[h * NSUB + k] = 0
		:: else
		fi
	}
	pinlt[h] = 0;
#ifdef ADAPTIVE
	uflight[h] = kick;
#endif
	printf("host%d: unpin: references dropped\n", h);
	CHECK
}

/* the unpin's f->lock section: note the merge (kick), wake the waiter */
inline unpin_wake()
{
	flock = _pid + 1;
	if
	:: kick ->
		printf("host%d: unpin: f->lock: merge noted, broadcast\n", h);
#ifdef ADAPTIVE
		/* the unpin touches the page when it notes, under
		 * f->lock (its references are gone already) */
		GTOUCH;
		uflight[h] = 0;
#endif
		note_merge()			/* file_note_merge() */
	:: else ->
		printf("host%d: unpin: f->lock: broadcast\n", h)
	fi;
	if
	:: cv_waiting -> cv_sig = true;		/* pthread_cond_broadcast */
		REACHED(19)
	:: else
	fi;
	CHECK;
	fwake = false;
	flock = 0
}

inline unpin_fast()
{
#ifndef BROKEN_FAST_UNPIN_NO_WAKE
	d_step { PINNED(h) -> unpin_drop() };
	/* read seq; the lock if needed (folding the lock into the read is
	 * sound: a wake finds a waiter only if it waits for these references) */
	if
	:: d_step { (seq_odd || kick) && flock == 0 -> unpin_wake() }
	:: d_step { !(seq_odd || kick) ->
		printf("host%d: unpin: seq even, no lock\n", h) }
	fi
#else
	d_step { PINNED(h) -> fwake = seq_odd;		/* reads seq too early */
		printf("host%d: unpin: reads seq (odd: %d)\n", h, fwake) };
	d_step { unpin_drop() };
	if
	:: d_step { (fwake || kick) && flock == 0 -> unpin_wake() }
	:: d_step { !(fwake || kick) ->
		printf("host%d: unpin: seq was even, no lock\n", h) }
	fi
#endif
}
#ifndef HOLDER_GP
#define UNPIN	unpin_fast()
#else
/* HOLDER_GP, gmem_unpin(): a fast pin on an intact folio (b-lazy: no
 * merge to note) is undone in an RCU section: announce, read seq; even,
 * drop its references (a holder that comes in waits for this section to
 * end, so no wake is needed); else, and for every other pin, the locked
 * path.  One step: a holder in between could only wait for it. */
#define PIN_INTACT(h)	((pinf[(h) * NSUB] == 0 || pinf[(h) * NSUB] == INTACT + 1) && \
			 (pinf[(h) * NSUB + 1] == 0 || pinf[(h) * NSUB + 1] == INTACT + 1))
#define UNPIN_FAST_OK	(pfast && !seq_odd && PIN_INTACT(h))
inline unpin_c()
{
	if
#ifndef BROKEN_HOLDER_UNPIN_NO_ANNOUNCE
	:: d_step { PINNED(h) && UNPIN_FAST_OK ->
		fast_used = 1;
		unpin_drop();
		pfast = false }
#else
	:: d_step { PINNED(h) && UNPIN_FAST_OK ->	/* no fast_used */
		in_rcu[h] = 1;
		printf("host%d: unpin: seq even, no announce\n", h);
		pfast = false };
	   d_step { unpin_drop(); in_rcu[h] = 0 }
#endif
	:: atomic { PINNED(h) && !UNPIN_FAST_OK ->
		fast_used = (pfast -> 1 : fast_used);
		pfast = false };
	   unpin_locked()
	fi
}
#define UNPIN	unpin_c()
#endif
#else
#define UNPIN	unpin_locked()
#endif

#define OP_FAULT	1
#define OP_PIN		2
#define OP_LTPIN	3	/* b-adaptive: a long-term pin, lock exclusive */
#define OP_FASTPIN	4	/* FAST: a fast pin that kept its references */

#ifdef FAST
/*
 * FAST, gmem_pin() of a short-term pin: the fast path first.  Entry (in
 * the call's first step): rcu_read_lock(); s = seq, odd: slow path; read
 * the PTEs of [lo, hi] in the host's mm, one absent: slow path.  Reading
 * both PTEs in one step is sound: they change only in a zap, under seq
 * odd, and a pair read across a zap has one absent, as after it.
 */
#ifndef HOLDER_GP
#define FAST_PIN_OK	(!longterm)
#define FAST_ANNOUNCE
#else
#define FAST_PIN_OK	(lo == hi)	/* a one-page pin, either kind */
#define FAST_ANNOUNCE	fast_used = 1;
#endif
inline fast_begin()
{
	if
	:: FAST_PIN_OK ->
		in_rcu[h] = 1;			/* rcu_read_lock() */
		FAST_ANNOUNCE
		seqchg[h] = 0;			/* s = seq */
		fok = !seq_odd;
		for (k : 0 .. NSUB - 1) {
			if
			:: fok && IN(k) ->
				fpte[k] = pte[h * NSUB + k];
				fok = (fpte[k] != 0)
			:: else
			fi
		}
		if
		:: !fok && seq_odd ->
			printf("host%d: fast pin [%d,%d]: seq odd: slow path\n", h, lo, hi)
		:: !fok && !seq_odd ->
			printf("host%d: fast pin [%d,%d]: no PTE: slow path\n", h, lo, hi)
		:: else
		fi;
		if
		:: !fok ->
			in_rcu[h] = 0;		/* rcu_read_unlock() */
			fpte[0] = 0;
			fpte[1] = 0
		:: else ->
			printf("host%d: fast pin [%d,%d]: rcu_read_lock, seq even, PTEs read\n", h, lo, hi);
			fk = lo
		fi;
		k = 0
	:: else
	fi
}

/*
 * Then, each a step of its own: folio_try_get() of each page's folio (a
 * reference only if the refcount is not 0: a split or merged-away folio,
 * whose refcount block_split()/block_unsplit() froze to 0, refuses); and
 * the re-check: seq == s and every PTE still points at its folio.  Passed:
 * the references are the pin (pincount, pin record).  Failed (or a
 * try_get refused): drop the references taken, rcu_read_unlock(), then
 * (fnote: a folio of a split block, whose merge the reference may have
 * made fail; fwake: seq odd) f->lock: note the merge, wake the waiter; and
 * the slow path.  The re-check and the pin are one step: the pin's counts
 * are read only by drain() after a grace period, and by the checks.
 */
#ifndef BROKEN_FAST_NO_RECHECK
#define RECHECK		(!seqchg[h] && \
			 (!IN(0) || pte[h * NSUB] == fpte[0]) && \
			 (!IN(1) || pte[h * NSUB + 1] == fpte[1]))
#else
#define RECHECK		true
#endif
inline fast_pin()
{
	do
	:: d_step { in_rcu[h] && fok && fk <= hi ->
		F = fpte[fk] - 1;
		if
		:: ref[F] > 0 ->			/* folio_try_get() */
			printf("host%d: fast pin: try_get of folio %d\n", h, F);
			ref[F]++;
			fref[h * NSUB + fk] = F + 1
		:: else ->
			printf("host%d: fast pin: try_get of folio %d refused\n", h, F);
			fok = false
		fi;
		fk++;
		CHECK }
	:: d_step { in_rcu[h] && !(fok && fk <= hi) ->
		if
		:: fok && RECHECK ->
			for (k : 0 .. NSUB - 1) {
				if
				:: IN(k) ->
					F = fref[h * NSUB + k] - 1;
					pinc[F]++;
					lt[F] = lt[F] + longterm;
					pinf[h * NSUB + k] = F + 1;
					fref[h * NSUB + k] = 0
				:: else
				fi
			}
			pinlt[h] = longterm;
#ifdef HOLDER_GP
			pfast = true;
#endif
			op = OP_FASTPIN;
			printf("host%d: fast pin [%d,%d]: ok\n", h, lo, hi);
			REACHED(16)
		:: else ->
			/* the speculative reference came after a conversion's
			 * check, which has flipped the page: the re-check saves
			 * the day */
			if
			:: seqchg[h] && ((IN(0) && attr[0] == PRIVATE) ||
					 (IN(1) && attr[1] == PRIVATE)) -> REACHED(17)
			:: else
			fi;
			if
			:: fok && seqchg[h] -> REACHED(21)	/* seq has changed */
			:: else
			fi;
			for (k : 0 .. NSUB - 1) {
				if
				:: fref[h * NSUB + k] != 0 ->
					F = fref[h * NSUB + k] - 1;
					ref[F]--;		/* folio_put() */
					if
					:: F != INTACT ->
#if !defined(BROKEN_FAST_UNDO_NO_NOTE) && !defined(HOLDER_GP)
						fnote = true
#else
						skip
#endif
#ifdef ADAPTIVE
						; uflight[h] = 1
#endif
					:: else
					fi;
					fref[h * NSUB + k] = 0
				:: else
				fi
			};
#ifndef HOLDER_GP
			fwake = seq_odd;
#endif
			printf("host%d: fast pin [%d,%d]: re-check fails: undo, slow path\n", h, lo, hi)
		fi;
		in_rcu[h] = 0;				/* rcu_read_unlock() */
		seqchg[h] = 0;
		fpte[0] = 0;
		fpte[1] = 0;
		fk = 0;
		fok = false;
		CHECK;
		if
		:: op == OP_FASTPIN -> lo = 0; hi = 0; longterm = false
		:: else
		fi }
	:: !in_rcu[h] -> break
	od;
	if
	:: op == OP_FASTPIN
	:: op != OP_FASTPIN && (fnote || fwake) ->
		/* f->lock: note the merge, wake a waiting converter */
		d_step {
			flock == 0 -> flock = _pid + 1;
			if
			:: fnote ->
#if !defined(ADAPTIVE) || MERGE_DELAY == 0
				note_merge()
#else
				/* b-adaptive: note the block again, but this is
				 * no touch: the page's wait goes on */
				merge_todo = true
#endif
#ifdef ADAPTIVE
				; uflight[h] = 0
#endif
			:: else
			fi;
			if
			:: cv_waiting -> cv_sig = true
			:: else
			fi;
			printf("host%d: fast pin undone: f->lock: note=%d wake=%d\n", h, fnote, fwake);
			CHECK;
			fnote = false;
			fwake = false;
			flock = 0
		}
	:: op != OP_FASTPIN && !(fnote || fwake)
	fi
}
#endif

/*
 * b-adaptive, gmem_pin() with GMEM_PIN_LONGTERM, after pin_check():
 * file_split_for_pin() splits an intact block that [lo, hi] covers in part,
 * by block_split_for_pin(): EAGAIN (perr) if a reference beyond the
 * file's and the entries' is on it, tested before anything changes; else
 * zap its entries in every mm, test again, and split.  Context:
 * invalidate lock exclusive, f->lock.
 */
#ifdef BROKEN_SPLIT_NO_REFCHECK
#define PIN_SPLIT_REFS_OK	true
#else
#define PIN_SPLIT_REFS_OK	(ref[INTACT] - map[INTACT] == 1)
#endif
#if defined(FAST) && !defined(BROKEN_FAST_SPLIT_NO_GRACE_PERIOD) && !defined(HOLDER_GP)
#define PIN_GP_FIRST	(pgp == 0)
#else
#define PIN_GP_FIRST	false
#endif
inline lt_split_before_pin()
{
	assert(inv_writer == _pid + 1 && flock == _pid + 1);
#ifndef BROKEN_NO_SPLIT_BEFORE_PIN
	if
	:: !split && !(lo == 0 && hi == NSUB - 1) ->
		if
#ifdef FAST
		:: !PIN_SPLIT_REFS_OK && PIN_GP_FIRST ->
			/* maybe a fast pin's speculative reference: drop
			 * f->lock, synchronize_rcu(), test again */
			pgp = 1
#endif
		:: !PIN_SPLIT_REFS_OK && !PIN_GP_FIRST ->
			/* another pin holds it; nothing changed */
			assert(pinc[INTACT] > 0);
			REACHED(12);
			perr = true
		:: else ->
			zap_folio(INTACT);
#ifndef BROKEN_SPLIT_NO_REFCHECK
			/* the second test (ref != 1 || mapcount: EAGAIN)
			 * never fails: only entries were left, and the zap
			 * removed them all */
			assert(ref[INTACT] == 1 && map[INTACT] == 0);
#endif
			REACHED(11);
			block_split()
		fi
	:: else
	fi
#else
	skip
#endif
}

/* gmem_pin(): file_enter_shared() (b-adaptive, long-term: file_enter()) */
inline pin_enter()
{
#ifdef ADAPTIVE
	/* b-adaptive: a long-term pin is a setup call: it
	 * takes the invalidate lock exclusively */
	if
	:: longterm -> op = OP_LTPIN; wrlock(); SEQ_BUMP
		printf("host%d: invalidate lock exclusive (P%d, long-term pin)\n", h, _pid)
	:: else -> rdlock()
	fi
#else
	rdlock()
#endif
}

/* gmem_pin(), the slow path: under the invalidate lock and f->lock */
inline pin_body()
{
	if
	:: (IN(0) && attr[0] == PRIVATE) ||
	   (IN(1) && attr[1] == PRIVATE) ->
		/* pin_check(): EFAULT */
		printf("host%d: pin [%d,%d] longterm=%d: EFAULT\n", h, lo, hi, longterm);
		REACHED(9)
	:: else ->
#ifdef ADAPTIVE
		if
		:: longterm -> lt_split_before_pin()
		:: else
		fi;
		if
		:: perr ->
			printf("host%d: pin [%d,%d] longterm=%d: EAGAIN\n", h, lo, hi, longterm)
#ifdef FAST
		:: pgp == 1 ->
			printf("host%d: pin: synchronize_rcu() (f->lock dropped)\n", h)
#endif
		:: else ->
#endif
		printf("host%d: pin [%d,%d] longterm=%d: ok\n", h, lo, hi, longterm);
		for (k : 0 .. NSUB - 1) {
			if
			:: IN(k) && pte[h * NSUB + k] == 0 ->
				F = FID(k);	/* pt_install() */
				ref[F]++;
				map[F]++;
				pte[h * NSUB + k] = F + 1
			:: else
			fi
		}
		for (k : 0 .. NSUB - 1) {
			if
			:: IN(k) ->
				F = FID(k);	/* folio_pin() */
				ref[F]++;
				pinc[F]++;
				lt[F] = lt[F] + longterm;
				pinf[h * NSUB + k] = F + 1
			:: else
			fi
		}
		pinlt[h] = longterm
#ifdef ADAPTIVE
		fi
#endif
	fi;
	CHECK;
#ifdef FAST
	if
	:: pgp == 1 -> skip	/* goes on after a grace period */
	:: else ->
		lo = 0; hi = 0; longterm = false; perr = false; pgp = 0
	fi;
#else
	lo = 0; hi = 0; longterm = false; perr = false;
#endif
	flock = 0
}

inline pin_locked()
{
	d_step {
		/* ... all or nothing, under f->lock */
		flock == 0 -> flock = _pid + 1;
		pin_body()
	}
#if defined(FAST) && defined(ADAPTIVE)
	/* b-adaptive, a long-term pin's split found a reference beyond the
	 * file's and the entries': after a grace period, test again */
	;
	if
	:: pgp == 1 ->
		d_step { RCU_IDLE && flock == 0 ->
			flock = _pid + 1;
			pgp = 2;
			printf("host%d: grace period over, tests again\n", h);
			pin_body() }
	:: else
	fi
#endif
}

proctype host(byte h)
{
	byte n, op, s, lo, hi;
	bool longterm;
	bool perr;		/* b-adaptive: the long-term pin fails (EAGAIN) */
	bool kick;		/* this call must run file_kick_merges() */
#ifdef FAST
	byte fpte[NSUB];	/* the fast pin's PTE snapshots */
	byte fk;		/* ... its next page to try_get */
	bool fok;		/* ... so far so good */
	bool fnote, fwake;	/* undone: note a merge, wake the converter */
	byte pgp;		/* b-adaptive's split for a long-term pin:
				 * 1 waits for a grace period, 2 has */
#endif
#ifdef HOLDER_GP
	bit hgp;		/* its kick must wait for a grace period */
	bool pfast;		/* its pin was taken by the fast path */
#endif

	do
	:: n == HOST_OPS(h) -> break
	:: else ->
		if
		:: atomic {
			/* gmem_fault() -> host_access(): file_enter_shared() */
#ifdef NO_CALL_WHILE_PINNED
			!PINNED(h) ->
#endif
			op = OP_FAULT;
			if
			:: s = 0
			:: s = 1
			fi;
			rdlock()
		   };
		   d_step {
			/* ... host_fault_locked() under f->lock */
			flock == 0 -> flock = _pid + 1;
			if
			:: attr[s] == PRIVATE ->		/* SIGBUS */
				printf("host%d: fault page %d: SIGBUS\n", h, s);
				REACHED(10)
			:: else ->
				printf("host%d: fault page %d: ok\n", h, s);
				if
				:: pte[h * NSUB + s] == 0 ->
					F = FID(s);		/* pt_install() */
					ref[F]++;
					map[F]++;
					pte[h * NSUB + s] = F + 1
				:: else
				fi
			fi;
			CHECK;
			s = 0;
			flock = 0
		   }
		:: atomic {
			/* gmem_pin(): file_enter_shared() */
			!PINNED(h) -> op = OP_PIN;
			if
			:: lo = 0; hi = 0
			:: lo = 1; hi = 1
			:: lo = 0; hi = 1
			fi;
#ifdef HOST_ANY_PIN
			if
			:: longterm = false
			:: longterm = true
			fi;
#else
			/* host 0 pins short-term (DMA), host 1 long-term
			 * (FOLL_LONGTERM) */
			longterm = (h == 1);
#endif
#ifdef FAST
			fast_begin()
		   };
		   fast_pin();
		   if
		   :: op == OP_FASTPIN
		   :: else ->
			atomic { pin_enter() };
			pin_locked()
		   fi
#else
			pin_enter()
		   };
		   pin_locked()
#endif
		:: UNPIN			/* gmem_unpin(): op stays 0 */
		fi;
		/* invalidate_unlock_shared() (faults, pins), then the kick;
		 * an unpin kicks only if it noted a merge */
		atomic {
			if
			:: op == OP_FAULT || op == OP_PIN ->
				rdunlock(); kick = true	/* not after an unpin */
			:: op == OP_LTPIN ->
				SEQ_BUMP inv_writer = 0; kick = true	/* invalidate_unlock() */
			:: else
			fi;
			op = 0;
			n++
		};
		if
		:: kick -> kick = false; kick_merges()
		:: else
		fi
	od;
	/* the process exits: drop its pin */
	if
	:: UNPIN;
	   if
	   :: kick -> kick = false; kick_merges()
	   :: else
	   fi
	:: !PINNED(h)
	fi
}

#ifdef ADAPTIVE
/*
 * b-adaptive: calls on the rest of the file.  Each takes the invalidate
 * lock exclusively (file_enter()) and is either a gmem_convert() of pages
 * in another block (it finds pages to change: a tick, which touches
 * nothing here; its own block is left out) or gmem_file_compact().  Then
 * invalidate_unlock() and its kick.
 */
proctype ticker()
{
	byte n;

	do
	:: n == TICK_OPS -> break
	:: else ->
		atomic {
			wrlock();
			SEQ_BUMP
			printf("tick: invalidate lock exclusive (P%d)\n", _pid)
		};
		if
		:: d_step {
			flock == 0 -> flock = _pid + 1;
			/* gmem_convert() of another block: it found pages to
			 * change; its note is not about this block */
			printf("tick: convert pages of another block: ok\n");
			MERGE_TICK;			/* file_merge_tick() */
			run_merges(PERIOD_END, false);	/* file_run_merges() */
			CHECK;
			flock = 0 }
		:: d_step {
			flock == 0 -> flock = _pid + 1;
			/* gmem_file_compact() */
			printf("tick: compact\n");
			run_merges(false, true);
			CHECK;
			flock = 0 }
		fi;
		atomic {
			SEQ_BUMP
			inv_writer = 0;
			n++
		};
		kick_merges()
	od
}
#endif

/* ---------------------------------------------------------------- init */

init
{
	/* a GMEM_FILE_INIT_SHARED file's huge page after its first use:
	 * intact, all shared (INIT_PRIVATE: start intact and private) */
#ifdef INIT_PRIVATE
	attr[0] = PRIVATE;
	attr[1] = PRIVATE;
#else
	attr[0] = SHARED;
	attr[1] = SHARED;
#endif
	ref[INTACT] = 1;

	atomic {
		run converter(0);
		run converter(1);
		run host(0);
		run host(1)
#ifdef ADAPTIVE
		; run ticker()
#endif
	};

	/* every process has returned (a deadlock leaves one blocked: pan's
	 * end-state check reports it as an invalid end state) */
	_nr_pr == 1;
	assert(readers == 0 && inv_writer == 0 && wwait == 0 && flock == 0 &&
	       !cv_waiting);
	assert(NO_PRIVATE_ACCESS && STRUCTURE_OK);
#ifndef ADAPTIVE
	/* no block that may merge is left split (HVO never restored) ... */
	assert(!(split && attr[0] == attr[1] && QUIET(0) && QUIET(1)));
#ifndef NO_MERGE_FLAG_CHECK
	/* ... because no noted merge was lost */
	assert(!merge_pending && !merge_todo)
#endif
#else
#if MERGE_DELAY == 0
	/* b-adaptive without a delay: as b-lazy */
	assert(!MERGEABLE);
	assert(!merge_pending && !merge_todo);
#else
	/* b-adaptive: a block that may merge may be left split, waiting for
	 * its page to age, but then it is still noted (a period end after
	 * D << backoff ticks without a touch merges it), and no merge is
	 * ever pending */
	assert(!MERGEABLE || merge_todo);
	assert(!merge_pending);
#endif
	/* and gmem_file_compact() merges it at once */
	atomic {
		wrlock();
		flock = _pid + 1;
		run_merges(false, true);
		CHECK;
		flock = 0;
		inv_writer = 0
		/* (no seq: every process has returned) */
	};
	assert(!MERGEABLE)
#endif
}

/* ----------------------------------------------------------- properties */

/* Safety: in every reachable state no PTE and no pin on a private page. */
ltl safety { [] NO_PRIVATE_ACCESS }

/* Liveness: every gmem_convert() call returns: both converters get
 * through all their calls (checked with pan -a -f: weak fairness). */
ltl conv_ends { <> (conv_done == NCONV) }
