/* SPDX-License-Identifier: MIT */
/*
 * compare.h - `gmem compare`, the policies side by side (compare.c).
 */
#ifndef GMEM_COMPARE_H
#define GMEM_COMPARE_H

/* The subcommand's entry: argv[0] is "compare"; returns the exit code. */
int compare_main(int argc, char **argv);

/* What `gmem compare --help` prints after the usage line. */
extern const char compare_help[];

#endif /* GMEM_COMPARE_H */
