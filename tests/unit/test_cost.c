// SPDX-License-Identifier: MIT
/*
 * test_cost.c - the cost model (tools/cost.c): the published defaults
 * and their formulas, cost_save()/cost_load() round trips, what
 * cost_load() refuses, and cost_default_path()'s order.  Nothing here
 * measures or changes a setting (tests/compare/calibrate.sh does).
 */
#include <math.h>
#include <unistd.h>

#include "harness.h"
#include "../../tools/cost.h"

static char tmpdir[] = "/tmp/gmem-test-cost.XXXXXX";

static bool near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fabs(b) + 0.051;
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

static bool test_names(void)
{
	for (int u = 0; u < NR_COST_UNITS; u++) {
		const char *n = cost_unit_name((enum cost_unit)u);

		CHECK(n && *n);
		for (int v = 0; v < u; v++)
			CHECK(strcmp(n, cost_unit_name((enum cost_unit)v)));
	}
	CHECK(!strcmp(cost_unit_name(CU_SPLIT_1G), "split_1g"));
	CHECK(!strcmp(cost_unit_name(CU_IOMMU_MAP), "iommu_map"));
	CHECK(cost_unit_name(NR_COST_UNITS) == NULL);
	for (int r = 0; r < NR_COST_RAW; r++)
		CHECK(cost_raw_name((enum cost_raw)r) != NULL);
	CHECK(cost_raw_name(NR_COST_RAW) == NULL);
	return true;
}

/* Every default is positive, says where it comes from, and is a default. */
static bool test_published(void)
{
	struct cost_model m;

	cost_published(&m);
	CHECK(!m.when[0] && !m.path[0]);
	for (int u = 0; u < NR_COST_UNITS; u++) {
		CHECK(isfinite(m.ns[u]) && m.ns[u] > 0);
		CHECK(m.how[u][0]);
		CHECK(!m.measured[u]);
	}
	/*
	 * Kravetz v8, per page of 500,000: 8.2 us to allocate without HVO;
	 * HVO one page at a time: optimise 49.8 us, restore 64.4 us
	 */
	CHECK(near(m.ns[CU_SPLIT_2M], 64400 + 8200));
	CHECK(near(m.ns[CU_MERGE_2M], 8200 + 49800));
	CHECK(m.src[CU_SPLIT_1G] == COST_DEFAULT);
	CHECK(strstr(m.how[CU_SPLIT_1G], "Kravetz"));
	/* the 1 GiB units dwarf the 2 MiB ones, as the issue measured */
	CHECK(m.ns[CU_SPLIT_1G] > 100 * m.ns[CU_SPLIT_2M]);
	CHECK(m.ns[CU_MERGE_1G] > 100 * m.ns[CU_MERGE_2M]);
	return true;
}

/* The formulas of docs/COSTS.md over measured raw figures. */
static bool test_derive(void)
{
	const double scale = 4095 / 7.0;
	double r1, o1;
	struct cost_model m;

	memset(&m, 0, sizeof(m));
	m.raw[CR_ALLOC_2M_OFF_BATCH] = 20000;
	m.raw[CR_HVO_OPTIMISE_2M] = 30000;	/* one page */
	m.raw[CR_HVO_RESTORE_2M] = 50000;
	m.raw[CR_HVO_OPTIMISE_2M_BATCH] = 10000;	/* per page of a batch */
	m.raw[CR_HVO_RESTORE_2M_BATCH] = 20000;
	m.raw_ok[CR_ALLOC_2M_OFF_BATCH] = m.raw_ok[CR_HVO_OPTIMISE_2M] =
		m.raw_ok[CR_HVO_RESTORE_2M] =
		m.raw_ok[CR_HVO_OPTIMISE_2M_BATCH] =
		m.raw_ok[CR_HVO_RESTORE_2M_BATCH] = true;
	m.raw[CR_MADV_EMPTY] = 1000;
	m.raw[CR_ZAP_1] = 3000;
	m.raw[CR_ZAP_512] = 3000 + 511 * 200.0;
	m.raw[CR_ZAP_1_IPI] = 9000;
	m.raw[CR_REFAULT] = 2500;
	m.raw[CR_ZERO_2M] = 250;
	m.raw_ok[CR_MADV_EMPTY] = m.raw_ok[CR_ZAP_1] = m.raw_ok[CR_ZAP_512] =
		m.raw_ok[CR_ZAP_1_IPI] = m.raw_ok[CR_REFAULT] =
		m.raw_ok[CR_ZERO_2M] = true;
	cost_derive(&m);

	CHECK(near(m.ns[CU_SPLIT_2M], 50000 + 20000));
	CHECK(m.src[CU_SPLIT_2M] == COST_MODEL);
	CHECK(near(m.ns[CU_MERGE_2M], 20000 + 30000));
	/*
	 * 1 GiB: the per-operation part (one page - per page of a batch)
	 * + the batch's per-page part x 4095/7
	 */
	r1 = (50000 - 20000) + 20000 * scale;
	o1 = (30000 - 10000) + 10000 * scale;
	CHECK(near(m.ns[CU_SPLIT_1G], 512 * 20000.0 + r1 +
				      (30000 - 10000) + 512 * 10000.0));
	CHECK(m.src[CU_SPLIT_1G] == COST_MODEL);
	CHECK(near(m.ns[CU_MERGE_1G], (50000 - 20000) + 512 * 20000.0 +
				      512 * 20000.0 + o1));
	CHECK(near(m.ns[CU_ZAP_PTE], 200));
	CHECK(m.measured[CU_ZAP_PTE]);
	CHECK(near(m.ns[CU_TLB_FLUSH], 9000 - 1000 - 200));
	CHECK(near(m.ns[CU_FAULT], 2500));
	CHECK(near(m.ns[CU_ZERO_4K], 250));
	/* clearing an entry and the flush of a batch are apart */
	CHECK(near(m.ns[CU_S2_INVAL], 200));
	CHECK(m.src[CU_S2_INVAL] == COST_MODEL);
	CHECK(near(m.ns[CU_S2_FLUSH], 7800));
	CHECK(near(m.ns[CU_IOMMU_INVAL], 200));
	CHECK(near(m.ns[CU_IOMMU_FLUSH], 7800));
	CHECK(near(m.ns[CU_IOMMU_MAP], 200));

	/* measured 1 GiB HVO replaces the scaled figures */
	m.raw[CR_HVO_RESTORE_1G] = 7e6;
	m.raw[CR_HVO_OPTIMISE_1G] = 3e6;
	m.raw_ok[CR_HVO_RESTORE_1G] = m.raw_ok[CR_HVO_OPTIMISE_1G] = true;
	cost_derive(&m);
	CHECK(near(m.ns[CU_MERGE_1G], (50000 - 20000) + 512 * 20000.0 +
				      512 * 20000.0 + 3e6));

	/* a measured demote is split_1g itself, and the 2M split's base */
	m.raw[CR_DEMOTE_1G_ON] = 4e7;
	m.raw[CR_DEMOTE_1G_OFF] = 512 * 10000.0;
	m.raw_ok[CR_DEMOTE_1G_ON] = m.raw_ok[CR_DEMOTE_1G_OFF] = true;
	cost_derive(&m);
	CHECK(near(m.ns[CU_SPLIT_1G], 4e7));
	CHECK(m.measured[CU_SPLIT_1G] && m.src[CU_SPLIT_1G] == COST_MEASURED);
	CHECK(near(m.ns[CU_SPLIT_2M], 50000 + 10000));
	return true;
}

static bool same_model(const struct cost_model *a, const struct cost_model *b)
{
	for (int u = 0; u < NR_COST_UNITS; u++) {
		CHECK(near(b->ns[u], a->ns[u]));
		CHECK(b->src[u] == a->src[u]);
		CHECK(b->measured[u] == a->measured[u]);
		CHECK(!strcmp(b->how[u], a->how[u]));
	}
	for (int r = 0; r < NR_COST_RAW; r++) {
		CHECK(b->raw_ok[r] == a->raw_ok[r]);
		if (a->raw_ok[r])
			CHECK(near(b->raw[r], a->raw[r]));
	}
	CHECK(!strcmp(b->when, a->when));
	CHECK(!strcmp(b->host, a->host));
	return true;
}

static bool test_round_trip(void)
{
	struct cost_model m, back;
	char path[128];

	snprintf(path, sizeof(path), "%s/sub/dir/c.json", tmpdir);
	cost_published(&m);
	snprintf(m.when, sizeof(m.when), "2026-01-02T03:04:05Z");
	snprintf(m.host, sizeof(m.host), "Linux \"x\" \\ y, 2 CPUs");
	/* a how with every character JSON must escape, and UTF-8 */
	snprintf(m.how[CU_FAULT], sizeof(m.how[CU_FAULT]),
		 "quote \" backslash \\ tab \t newline \n ctrl \x01 \xc2\xb5s");
	m.ns[CU_FAULT] = 1234.5;
	m.src[CU_FAULT] = COST_MEASURED;
	m.measured[CU_FAULT] = true;
	m.raw[CR_REFAULT] = 1234.5;
	m.raw_ok[CR_REFAULT] = true;
	m.raw[CR_HVO_PAGES_2M] = 7;
	m.raw_ok[CR_HVO_PAGES_2M] = true;
	CHECK_EQ(cost_save(path, &m), 0);	/* makes the directories */
	memset(&back, 0xa5, sizeof(back));
	CHECK_EQ(cost_load(path, &back), 0);
	CHECK(same_model(&m, &back));
	CHECK(!strcmp(back.path, path));

	/* saving again replaces the file whole */
	m.ns[CU_ZAP_PTE] = 99.5;
	CHECK_EQ(cost_save(path, &m), 0);
	CHECK_EQ(cost_load(path, &back), 0);
	CHECK(near(back.ns[CU_ZAP_PTE], 99.5));
	return true;
}

/* What cost_load() refuses leaves the model untouched. */
static bool test_load_errors(void)
{
	static const char *const bad[] = {
		"",
		"{",
		"not json",
		"{}",
		"[1, 2]",
		"{\"gmem_calibration\": 2, \"units\": {}}",
		"{\"gmem_calibration\": 1, \"units\": {}}",
		("{\"gmem_calibration\": 1, \"units\": {\"split_1g\": "
		 "{\"ns\": 5, \"source\": \"measured\"}}}"),
		"{\"gmem_calibration\": 1} trailing",
		"{\"gmem_calibration\": 1, \"units\": []}",
	};
	struct cost_model m, keep;
	char path[128], text[4096], *p;
	size_t i;

	snprintf(path, sizeof(path), "%s/none.json", tmpdir);
	CHECK_EQ(cost_load(path, &m), -ENOENT);

	snprintf(path, sizeof(path), "%s/bad.json", tmpdir);
	cost_published(&keep);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(&m, &keep, sizeof(m));
		CHECK(write_file(path, bad[i]));
		if (cost_load(path, &m) != -EINVAL) {
			fprintf(stderr, "accepted: %s\n", bad[i]);
			return false;
		}
		CHECK(!memcmp(&m, &keep, sizeof(m)));
	}

	/* a complete file, then one unit broken at a time */
	CHECK_EQ(cost_save(path, &keep), 0);
	{
		FILE *f = fopen(path, "r");
		size_t n;

		CHECK(f);
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
	}
	CHECK_EQ(cost_load(path, &m), 0);
	{
		static const char *const swaps[][2] = {
			{ "\"ns\": ", "\"ns\": -" },	/* negative */
			{ "\"ns\": ", "\"ns\": 0*" },	/* not a number */
			{ "\"source\": \"default\"", "\"source\": \"guess\"" },
			{ "\"tlb_flush\"", "\"tlb_flushes\"" },	/* missing */
			{ "\"ns\": ", "\"ns\": \"1\", \"x\": " },	/* a string */
		};
		char edited[4200];

		for (i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
			size_t at;

			p = strstr(text, swaps[i][0]);
			CHECK(p);
			at = (size_t)(p - text);
			snprintf(edited, sizeof(edited), "%.*s%s%s", (int)at,
				 text, swaps[i][1], p + strlen(swaps[i][0]));
			CHECK(write_file(path, edited));
			m = keep;
			if (cost_load(path, &m) != -EINVAL) {
				fprintf(stderr, "accepted: %s\n", edited);
				return false;
			}
		}
		/* "ns": 0 exactly */
		p = strstr(text, "\"ns\": ");
		snprintf(edited, sizeof(edited), "%.*s\"ns\": 0.0, \"y\": %s",
			 (int)(p - text), text, p + 6);
		CHECK(write_file(path, edited));
		CHECK_EQ(cost_load(path, &m), -EINVAL);
	}
	/* unknown keys are ignored: files of later versions of gmem load */
	p = strstr(text, "\"units\"");
	CHECK(p);
	{
		char edited[4200];

		snprintf(edited, sizeof(edited), "%.*s\"later\": [1, {\"a\": "
			 "null}, true, false, \"\\u00b5\"], %s",
			 (int)(p - text), text, p);
		CHECK(write_file(path, edited));
		CHECK_EQ(cost_load(path, &m), 0);
	}
	return true;
}

static bool test_default_path(void)
{
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	setenv("GMEM_CALIBRATION", "/x/y.json", 1);
	CHECK(!strcmp(cost_default_path(), "/x/y.json"));
	unsetenv("GMEM_CALIBRATION");
	setenv("XDG_CACHE_HOME", "/cache", 1);
	CHECK(!strcmp(cost_default_path(), "/cache/gmem/calibration.json"));
	setenv("XDG_CACHE_HOME", "relative", 1);	/* ignored, as XDG says */
	setenv("HOME", "/home/u", 1);
	CHECK(!strcmp(cost_default_path(),
		      "/home/u/.cache/gmem/calibration.json"));
	unsetenv("XDG_CACHE_HOME");
	CHECK(!strcmp(cost_default_path(),
		      "/home/u/.cache/gmem/calibration.json"));
	if (home) {
		setenv("HOME", home, 1);
		free(home);
	}
	return true;
}

static const struct test tests[] = {
	TEST(test_names),
	TEST(test_published),
	TEST(test_derive),
	TEST(test_round_trip),
	TEST(test_load_errors),
	TEST(test_default_path),
};

int main(void)
{
	char cmd[160];
	int rc;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	rc = RUN_TESTS(tests);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return rc;
}
