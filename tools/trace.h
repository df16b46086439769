/* SPDX-License-Identifier: MIT */
/*
 * trace.h - replay of the gmem trace language (gmem-trace(5)).
 *
 * The engine is apart from the command-line tool so that tests and other
 * tools can run traces too.  It sits on the public API (gmem.h) only.
 */
#ifndef GMEM_TRACE_H
#define GMEM_TRACE_H

#include <stdio.h>

/* Exit codes of trace_replay(); the language fixes 0, 1 and 2. */
enum trace_status {
	TRACE_OK = 0,		/* ran to its end, every expect held */
	TRACE_EXPECT_FAILED = 1,	/* an expect failed; replay stopped */
	TRACE_SYNTAX_ERROR = 2,	/* a malformed line; replay stopped */
	TRACE_IO_ERROR = 2,	/* the trace could not be read (or no memory) */
};

/**
 * trace_replay() - run a trace, one command a line, single-threaded.
 * @in: the trace.
 * @name: what to call @in in messages that are not about one line
 *        (a read error), e.g. its path or "<stdin>".
 * @out: receives one "LINENO: RESULT" line per command, and the
 *       "LINENO: expect failed: ..." line.
 * @err: receives "LINENO: syntax error: ..." and read errors.
 *
 * Creates the trace's pool on its `pool` command and destroys it at the
 * end, however the replay ends.
 *
 * Return: an enum trace_status, usable as the process's exit code.
 */
int trace_replay(FILE *in, const char *name, FILE *out, FILE *err);

#endif /* GMEM_TRACE_H */
