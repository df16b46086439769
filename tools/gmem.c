// SPDX-License-Identifier: MIT
/*
 * gmem.c - the gmem command-line tool.
 *
 * One subcommand per entry of the table below; each parses its own
 * arguments and returns the process's exit code.  Messages of the tool
 * itself go to stderr prefixed "gmem: "; 2 is the exit code of a usage
 * error, as for replay's malformed traces.  What a command writes on
 * stdout is its result: if any of it could not be written, the command
 * fails (EXIT_WRITE) with one line on stderr.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmem.h"
#include "compare.h"
#include "cost.h"
#include "trace.h"
#include "vm.h"

#define EXIT_USAGE 2
#define EXIT_WRITE 1	/* stdout could not be written */

struct subcmd {
	const char *name;
	const char *args;	/* after "gmem NAME" in the usage */
	const char *summary;
	const char *help;	/* printed by "gmem NAME --help" */
	int (*run)(int argc, char **argv);
};

static int replay_main(int argc, char **argv);

/* Future subcommands (vm) go here, one entry each. */
static const struct subcmd subcmds[] = {
	{ "calibrate", "[OPTIONS]",
	  "measure the unit costs of kernel operations on this host",
	  calibrate_help, calibrate_main },
	{ "compare", "[OPTIONS]", "the policies side by side on built-in workloads",
	  compare_help, compare_main },
	{ "replay", "FILE|-", "run a trace (see gmem-trace(5)); - reads stdin",
	  "Runs a trace, one command a line, and prints \"LINENO: RESULT\" for\n"
	  "each command on stdout.  FILE - reads the trace from stdin.\n"
	  "\n"
	  "Exit status: 0 the trace ran to its end and every expect held;\n"
	  "1 an expect failed (\"LINENO: expect failed: ...\" on stdout),\n"
	  "or stdout could not be written;\n"
	  "2 a malformed line (\"LINENO: syntax error: ...\" on stderr),\n"
	  "or the trace could not be read.\n",
	  replay_main },
	{ "vm", "[OPTIONS]", "a real KVM guest whose RAM is a gmem file",
	  vm_help, vm_main },
};

#define NR_SUBCMDS (sizeof(subcmds) / sizeof(subcmds[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: gmem <command> [<args>]\n"
		   "       gmem --help | --version\n\ncommands:\n");
	for (i = 0; i < NR_SUBCMDS; i++)
		fprintf(f, "  %-9s %-10s %s\n", subcmds[i].name,
			subcmds[i].args, subcmds[i].summary);
	fprintf(f, "\n\"gmem <command> --help\" describes a command.\n");
}

static void subcmd_usage(const struct subcmd *c, FILE *f)
{
	fprintf(f, "usage: gmem %s %s\n", c->name, c->args);
}

static const struct subcmd *find_subcmd(const char *name)
{
	size_t i;

	for (i = 0; i < NR_SUBCMDS; i++)
		if (!strcmp(subcmds[i].name, name))
			return &subcmds[i];
	return NULL;
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/*
 * libgmem's test knob (internal, in the static library the tool links):
 * the highest refcount a pin may take a folio to; 0 restores the real
 * limit.  GMEM_TEST_REF_LIMIT lets a trace of a few lines reach it.
 */
void gmem_test_set_ref_limit(int limit);

static void ref_limit_from_env(void)
{
	const char *v = getenv("GMEM_TEST_REF_LIMIT");
	char *end;
	long n;

	if (!v || !*v)
		return;
	errno = 0;
	n = strtol(v, &end, 0);
	if (errno || *end || n <= 0 || n > 0x7fffffffL) {
		fprintf(stderr, "gmem: GMEM_TEST_REF_LIMIT=%s is not a positive int; ignored\n", v);
		return;
	}
	gmem_test_set_ref_limit((int)n);
}

static int replay_main(int argc, char **argv)
{
	const struct subcmd *c = find_subcmd("replay");
	const char *path;
	FILE *in;
	int ret;

	if (argc == 2 && is_help(argv[1])) {
		subcmd_usage(c, stdout);
		printf("\n%s", c->help);
		return EXIT_SUCCESS;
	}
	if (argc != 2 || (argv[1][0] == '-' && argv[1][1])) {
		fprintf(stderr, "gmem: replay takes one trace file, or - for stdin\n");
		subcmd_usage(c, stderr);
		return EXIT_USAGE;
	}
	path = argv[1];
	if (!strcmp(path, "-")) {
		in = stdin;
		path = "<stdin>";
	} else {
		in = fopen(path, "r");
		if (!in) {
			fprintf(stderr, "gmem: %s: %s\n", path, strerror(errno));
			return EXIT_USAGE;
		}
	}
	ref_limit_from_env();
	/*
	 * Line-buffered, so that what ran before a crash of the library is
	 * on record (abort() does not flush stdio).
	 */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = trace_replay(in, path, stdout, stderr);
	if (in != stdin)
		fclose(in);
	return ret;
}

/*
 * Flushes and closes stdout.  If anything written there was lost (a full
 * disk, /dev/full, a write error of any kind), says so and returns
 * EXIT_WRITE, unless the command already failed with a code of its own.
 */
static int close_stdout(int rc)
{
	bool lost = ferror(stdout);

	errno = 0;
	if (fclose(stdout))
		lost = true;
	if (!lost)
		return rc;
	/* errno is the close's; a write that failed earlier left none */
	fprintf(stderr, "gmem: error writing standard output%s%s\n",
		errno ? ": " : "", errno ? strerror(errno) : "");
	return rc ? rc : EXIT_WRITE;
}

static int run(int argc, char **argv)
{
	const struct subcmd *c;

	if (argc < 2) {
		fprintf(stderr, "gmem: no command given\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (is_help(argv[1]) || !strcmp(argv[1], "help")) {
		if (argc > 2 && (c = find_subcmd(argv[2]))) {
			subcmd_usage(c, stdout);
			printf("\n%s", c->help);
		} else {
			usage(stdout);
		}
		return EXIT_SUCCESS;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("gmem %s\n", GMEM_VERSION_STRING);
		return EXIT_SUCCESS;
	}
	c = find_subcmd(argv[1]);
	if (!c) {
		fprintf(stderr, "gmem: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	return close_stdout(run(argc, argv));
}
