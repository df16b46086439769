// SPDX-License-Identifier: MIT
/*
 * rangeset.c - a set of uint64_t as coalesced intervals in an AVL tree.
 *
 * Updates are built on two tree primitives that never allocate:
 *
 *   join(l, k, r)  - l < k < r, all AVL trees: one AVL tree, in
 *                    O(|height(l) - height(r)| + 1);
 *   split(t, key)  - the nodes below key and the rest, in O(log n).
 *
 * Removing a run of k consecutive intervals is then two splits, freeing
 * the middle tree in O(k) and one join: O(log n + k) however long the
 * run.  The one or two intervals at the edges of an update are edited in
 * place, which keeps the order of starts.  Only two updates need a new
 * node - adding an interval that touches nothing, and removing the middle
 * of one - and both take it before changing anything, so a failed
 * allocation leaves the set as it was.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "alloc.h"
#include "rangeset.h"

struct rs_node {
	struct rs_node *left;
	struct rs_node *right;
	uint64_t start;		/* first member */
	uint64_t end;		/* first non-member after start */
	int height;		/* of the subtree: a leaf is 1 */
};

/*
 * An AVL tree of height h holds at least fib(h + 2) - 1 nodes; 96 levels
 * would need more nodes than a 64-bit address space can hold.
 */
#define RS_MAX_HEIGHT 96

static inline int height(const struct rs_node *n)
{
	return n ? n->height : 0;
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void update_height(struct rs_node *n)
{
	int l = height(n->left), r = height(n->right);

	n->height = 1 + (l > r ? l : r);
}

static struct rs_node *rotate_left(struct rs_node *n)
{
	struct rs_node *r = n->right;

	n->right = r->left;
	r->left = n;
	update_height(n);
	update_height(r);
	return r;
}

static struct rs_node *rotate_right(struct rs_node *n)
{
	struct rs_node *l = n->left;

	n->left = l->right;
	l->right = n;
	update_height(n);
	update_height(l);
	return l;
}

/*
 * Restore balance at @n, whose subtrees are AVL trees with heights
 * differing by at most two.  A double rotation is needed only when the
 * inner grandchild is the taller one.  Returns the new subtree root.
 */
static struct rs_node *rebalance(struct rs_node *n)
{
	int bf = height(n->left) - height(n->right);

	if (bf > 1) {
		if (height(n->left->right) > height(n->left->left))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (bf < -1) {
		if (height(n->right->left) > height(n->right->right))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	update_height(n);
	return n;
}

/*
 * Join @l, the single node @k and @r, where every start in @l is below
 * k->start and every start in @r above it.  Walks down the spine of the
 * taller tree to a subtree of the other's height, hangs @k there and
 * rebalances on the way back up.
 */
static struct rs_node *join(struct rs_node *l, struct rs_node *k,
			    struct rs_node *r)
{
	int hl = height(l), hr = height(r);

	if (hl > hr + 1) {
		l->right = join(l->right, k, r);
		return rebalance(l);
	}
	if (hr > hl + 1) {
		r->left = join(l, k, r->left);
		return rebalance(r);
	}
	k->left = l;
	k->right = r;
	update_height(k);
	return k;
}

/*
 * Split @t into *@l, the nodes with start < @key, and *@r, the others.
 * The joins along the path cost O(log n) in total.
 */
static void split(struct rs_node *t, uint64_t key, struct rs_node **l,
		  struct rs_node **r)
{
	struct rs_node *a, *b;

	if (!t) {
		*l = NULL;
		*r = NULL;
		return;
	}
	if (t->start < key) {
		split(t->right, key, &a, &b);
		*l = join(t->left, t, a);
		*r = b;
	} else {
		split(t->left, key, &a, &b);
		*l = a;
		*r = join(b, t, t->right);
	}
}

/* Move the last node of non-empty @t to *@last; returns the rest. */
static struct rs_node *split_last(struct rs_node *t, struct rs_node **last)
{
	if (!t->right) {
		*last = t;
		return t->left;
	}
	t->right = split_last(t->right, last);
	return rebalance(t);
}

/* Join two trees where every start in @l is below every start in @r. */
static struct rs_node *join2(struct rs_node *l, struct rs_node *r)
{
	struct rs_node *last;

	if (!l)
		return r;
	l = split_last(l, &last);
	return join(l, last, r);
}

/* Take the spare node if there is one, else allocate. */
static struct rs_node *get_node(struct rangeset *rs)
{
	struct rs_node *n = rs->spare;

	if (n) {
		rs->spare = NULL;
		return n;
	}
	return gmem_alloc(sizeof(*n));
}

/* Keep a freed node as the spare if there is none: the next split needs one. */
static void put_node(struct rangeset *rs, struct rs_node *n)
{
	if (!rs->spare) {
		rs->spare = n;
		return;
	}
	gmem_free(n, sizeof(*n));
}

/* Free the whole tree @t, adding its intervals and units to the counts. */
static void free_tree(struct rangeset *rs, struct rs_node *t,
		      uint64_t *nr_ranges, uint64_t *nr_units)
{
	if (!t)
		return;
	free_tree(rs, t->left, nr_ranges, nr_units);
	free_tree(rs, t->right, nr_ranges, nr_units);
	*nr_ranges += 1;
	*nr_units += t->end - t->start;
	put_node(rs, t);
}

/* Link the detached node @n, whose interval touches no other, into the tree. */
static void insert_node(struct rangeset *rs, struct rs_node *n)
{
	struct rs_node *l, *r;

	split(rs->root, n->start, &l, &r);
	rs->root = join(l, n, r);
}

/* The last node with start < @key, or start <= @key when @incl. */
static struct rs_node *find_last_start(struct rs_node *n, uint64_t key,
				       bool incl)
{
	struct rs_node *found = NULL;

	while (n) {
		if (n->start < key || (incl && n->start == key)) {
			found = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return found;
}

/*
 * The first node with end > @x, or end >= @x when @incl.  The intervals
 * are disjoint, so ends are ordered like starts and the tree is searchable
 * by end too.
 */
static struct rs_node *find_first_end(struct rs_node *n, uint64_t x, bool incl)
{
	struct rs_node *found = NULL;

	while (n) {
		if (n->end > x || (incl && n->end == x)) {
			found = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return found;
}

/*
 * In-order iteration without parent pointers: the stack holds the nodes
 * still to visit whose left subtree has been entered, nearest on top.
 */
struct rs_iter {
	struct rs_node *stack[RS_MAX_HEIGHT];
	int depth;
};

static struct rs_node *iter_top(const struct rs_iter *it)
{
	return it->depth ? it->stack[it->depth - 1] : NULL;
}

/* Position @it at the first node with end > @x and return it. */
static struct rs_node *iter_seek(struct rs_iter *it, struct rs_node *n,
				 uint64_t x)
{
	it->depth = 0;
	while (n) {
		if (n->end > x) {
			it->stack[it->depth++] = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return iter_top(it);
}

/* Step past the node on top of the stack; returns the next one or NULL. */
static struct rs_node *iter_next(struct rs_iter *it)
{
	struct rs_node *n = it->stack[--it->depth]->right;

	while (n) {
		it->stack[it->depth++] = n;
		n = n->left;
	}
	return iter_top(it);
}

/**
 * rs_init() - initialise an empty set.
 * @rs: the set.
 *
 * Allocates nothing; an initialised set needs rs_destroy() only once it
 * has held members or a spare node.
 */
void rs_init(struct rangeset *rs)
{
	rs->root = NULL;
	rs->spare = NULL;
	rs->nr_ranges = 0;
	rs->nr_units = 0;
}

static void destroy_tree(struct rs_node *t)
{
	if (!t)
		return;
	destroy_tree(t->left);
	destroy_tree(t->right);
	gmem_free(t, sizeof(*t));
}

/**
 * rs_destroy() - free every node, the spare included.
 * @rs: the set; left empty and usable.
 */
void rs_destroy(struct rangeset *rs)
{
	destroy_tree(rs->root);
	gmem_free(rs->spare, sizeof(struct rs_node));
	rs_init(rs);
}

/**
 * rs_prepare() - make the next update unable to fail.
 * @rs: the set.
 *
 * A single rs_add() or rs_remove() needs at most one new node; this
 * allocates it ahead, so that a caller can allocate before taking a lock
 * or before a step that cannot be undone.
 *
 * Context: the caller serialises updates; allocates through gmem_alloc().
 * Return: 0, or -ENOMEM with the set unchanged.
 */
int rs_prepare(struct rangeset *rs)
{
	if (rs->spare)
		return 0;
	rs->spare = gmem_alloc(sizeof(struct rs_node));
	return rs->spare ? 0 : -ENOMEM;
}

/**
 * rs_add() - add [@start, @end) to the set.
 * @rs: the set.
 * @start: first unit.
 * @end: first unit after the range; @start >= @end adds nothing.
 *
 * Every interval overlapping or touching the range merges with it into
 * one.  Costs O(log n + k) for k intervals merged.
 *
 * Context: the caller serialises updates; allocates through gmem_alloc().
 * Return: 0, or -ENOMEM with the set unchanged.  Needs a node only when
 * the range touches no interval; never fails after rs_prepare().
 */
int rs_add(struct rangeset *rs, uint64_t start, uint64_t end)
{
	struct rs_node *first, *last, *n, *l, *m, *r;
	uint64_t nr_ranges = 0, nr_units = 0, new_end;

	if (start >= end)
		return 0;

	/* last: the last interval starting at or before end, touching or not */
	last = find_last_start(rs->root, end, true);
	if (!last || last->end < start) {
		n = get_node(rs);
		if (!n)
			return -ENOMEM;
		n->start = start;
		n->end = end;
		insert_node(rs, n);
		rs->nr_ranges++;
		rs->nr_units += end - start;
		return 0;
	}
	if (last->start <= start && last->end >= end)
		return 0;

	/* first..last touch the range: keep first, free the others */
	first = find_first_end(rs->root, start, true);
	new_end = max_u64(last->end, end);
	if (first != last) {
		/* no overflow: start < end <= UINT64_MAX for both */
		split(rs->root, first->start + 1, &l, &m);
		split(m, last->start + 1, &m, &r);
		free_tree(rs, m, &nr_ranges, &nr_units);
		rs->root = join2(l, r);
	}
	/* first keeps its place in the order: no interval lies in between */
	nr_units += first->end - first->start;
	first->start = min_u64(first->start, start);
	first->end = new_end;
	rs->nr_ranges -= nr_ranges;
	rs->nr_units = rs->nr_units - nr_units + (first->end - first->start);
	return 0;
}

/**
 * rs_remove() - remove [@start, @end) from the set.
 * @rs: the set.
 * @start: first unit.
 * @end: first unit after the range; @start >= @end removes nothing.
 *
 * Intervals inside the range go, those crossing its edges are trimmed,
 * and one containing the range with units left on both sides is split in
 * two.  Costs O(log n + k) for k intervals removed.
 *
 * Context: the caller serialises updates; allocates through gmem_alloc().
 * Return: 0, or -ENOMEM with the set unchanged.  Needs a node only to
 * split an interval; never fails after rs_prepare().
 */
int rs_remove(struct rangeset *rs, uint64_t start, uint64_t end)
{
	struct rs_node *first, *last, *n, *l, *m, *r;
	uint64_t nr_ranges = 0, nr_units = 0, lim;
	bool trim_first, keep_last;

	if (start >= end)
		return 0;

	last = find_last_start(rs->root, end, false);
	if (!last || last->end <= start)
		return 0;
	first = find_first_end(rs->root, start, false);

	if (first == last && first->start < start && first->end > end) {
		n = get_node(rs);
		if (!n)
			return -ENOMEM;
		n->start = end;
		n->end = first->end;
		first->end = start;
		insert_node(rs, n);
		rs->nr_ranges++;
		rs->nr_units -= end - start;
		return 0;
	}

	/*
	 * Free the nodes starting in [start, end), except last when it
	 * reaches past end: it is trimmed instead.  first is trimmed if it
	 * starts before start, else freed: decide before freeing.
	 */
	trim_first = first->start < start;
	keep_last = last->end > end;
	lim = keep_last ? last->start : end;
	n = find_last_start(rs->root, lim, false);
	if (n && n->start >= start) {
		split(rs->root, start, &l, &m);
		split(m, lim, &m, &r);
		free_tree(rs, m, &nr_ranges, &nr_units);
		rs->root = join2(l, r);
	}
	if (trim_first) {
		nr_units += first->end - start;
		first->end = start;
	}
	if (keep_last) {
		nr_units += end - last->start;
		last->start = end;
	}
	rs->nr_ranges -= nr_ranges;
	rs->nr_units -= nr_units;
	return 0;
}

/**
 * rs_test() - whether @x is a member.
 * @rs: the set.
 * @x: the unit.
 */
bool rs_test(const struct rangeset *rs, uint64_t x)
{
	const struct rs_node *n = find_first_end(rs->root, x, false);

	return n && n->start <= x;
}

/**
 * rs_count() - the number of members in [@start, @end).
 * @rs: the set.
 * @start: first unit.
 * @end: first unit after the range.
 *
 * Costs O(log n + k) for k intervals overlapping the range.
 */
uint64_t rs_count(const struct rangeset *rs, uint64_t start, uint64_t end)
{
	struct rs_iter it;
	struct rs_node *n;
	uint64_t count = 0;

	if (start >= end)
		return 0;
	for (n = iter_seek(&it, rs->root, start); n && n->start < end;
	     n = iter_next(&it))
		count += min_u64(n->end, end) - max_u64(n->start, start);
	return count;
}

/**
 * rs_first_in() - the smallest member in [@start, @end).
 * @rs: the set.
 * @start: first unit.
 * @end: first unit after the range.
 * @x: receives the member.
 *
 * Return: true if there is one.
 */
bool rs_first_in(const struct rangeset *rs, uint64_t start, uint64_t end,
		 uint64_t *x)
{
	const struct rs_node *n = find_first_end(rs->root, start, false);

	if (start >= end || !n || n->start >= end)
		return false;
	*x = max_u64(n->start, start);
	return true;
}

/**
 * rs_first_not_in() - the smallest non-member in [@start, @end).
 * @rs: the set.
 * @start: first unit.
 * @end: first unit after the range.
 * @x: receives the non-member.
 *
 * Return: true if there is one.
 */
bool rs_first_not_in(const struct rangeset *rs, uint64_t start, uint64_t end,
		     uint64_t *x)
{
	const struct rs_node *n = find_first_end(rs->root, start, false);

	if (start >= end)
		return false;
	if (!n || n->start > start) {
		*x = start;
		return true;
	}
	/* start is inside n; coalescing makes n->end a non-member */
	if (n->end >= end)
		return false;
	*x = n->end;
	return true;
}

/**
 * rs_next() - the first interval ending after @from.
 * @rs: the set.
 * @from: where to look from.
 * @start: receives the interval's start, raised to @from if below it.
 * @end: receives the interval's end.
 *
 * Iterate over the set with rs_next(rs, from, &s, &e), then from = e.
 *
 * Return: true if there is one.
 */
bool rs_next(const struct rangeset *rs, uint64_t from, uint64_t *start,
	     uint64_t *end)
{
	const struct rs_node *n = find_first_end(rs->root, from, false);

	if (!n)
		return false;
	*start = max_u64(n->start, from);
	*end = n->end;
	return true;
}

/**
 * rs_meta_bytes() - bytes of nodes held, the spare included.
 * @rs: the set.
 */
size_t rs_meta_bytes(const struct rangeset *rs)
{
	return ((size_t)rs->nr_ranges + (rs->spare ? 1 : 0)) *
	       sizeof(struct rs_node);
}

struct rs_check {
	const struct rs_node *prev;	/* in-order predecessor so far */
	uint64_t nr_ranges;
	uint64_t nr_units;
	char *why;
	size_t len;
};

static bool __attribute__((format(printf, 2, 3)))
check_fail(struct rs_check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why && c->len) {
		va_start(ap, fmt);
		vsnprintf(c->why, c->len, fmt, ap);
		va_end(ap);
	}
	return false;
}

/*
 * Check the subtree @n in order, and its height against *@h, which
 * receives the computed height.  @depth bounds the recursion so that a
 * cycle in a corrupted tree fails instead of overflowing the stack.
 */
static bool check_subtree(const struct rs_node *n, struct rs_check *c,
			  int depth, int *h)
{
	int hl = 0, hr = 0;	/* set by the recursion; quiets gcc -O3 */

	if (!n) {
		*h = 0;
		return true;
	}
	if (depth >= RS_MAX_HEIGHT)
		return check_fail(c, "tree deeper than %d", RS_MAX_HEIGHT);
	if (!check_subtree(n->left, c, depth + 1, &hl))
		return false;
	if (n->start >= n->end)
		return check_fail(c, "empty interval [%llu, %llu)",
				  (unsigned long long)n->start,
				  (unsigned long long)n->end);
	if (c->prev && c->prev->end >= n->start)
		return check_fail(c, "[%llu, %llu) %s [%llu, %llu)",
				  (unsigned long long)c->prev->start,
				  (unsigned long long)c->prev->end,
				  c->prev->end == n->start ? "touches" :
				  c->prev->start < n->start ? "overlaps" :
				  "out of order before",
				  (unsigned long long)n->start,
				  (unsigned long long)n->end);
	c->prev = n;
	c->nr_ranges++;
	c->nr_units += n->end - n->start;
	if (!check_subtree(n->right, c, depth + 1, &hr))
		return false;
	if (hl - hr > 1 || hr - hl > 1)
		return check_fail(c, "unbalanced at [%llu, %llu): %d vs %d",
				  (unsigned long long)n->start,
				  (unsigned long long)n->end, hl, hr);
	*h = 1 + (hl > hr ? hl : hr);
	if (n->height != *h)
		return check_fail(c, "height %d at [%llu, %llu), expected %d",
				  n->height, (unsigned long long)n->start,
				  (unsigned long long)n->end, *h);
	return true;
}

/**
 * rs_ok() - validate the whole set.
 * @rs: the set.
 * @why: receives a one-line reason on failure; may be NULL.
 * @len: size of @why.
 *
 * Checks search order, AVL balance and heights, that intervals are
 * non-empty, disjoint and coalesced, and the counters.  Costs O(n).
 *
 * Return: true if the set is consistent.
 */
bool rs_ok(const struct rangeset *rs, char *why, size_t len)
{
	struct rs_check c = { .why = why, .len = len };
	int h;

	if (!check_subtree(rs->root, &c, 0, &h))
		return false;
	if (c.nr_ranges != rs->nr_ranges)
		return check_fail(&c, "nr_ranges %llu, counted %llu",
				  (unsigned long long)rs->nr_ranges,
				  (unsigned long long)c.nr_ranges);
	if (c.nr_units != rs->nr_units)
		return check_fail(&c, "nr_units %llu, counted %llu",
				  (unsigned long long)rs->nr_units,
				  (unsigned long long)c.nr_units);
	return true;
}
