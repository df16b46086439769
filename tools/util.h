/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers the gmem tool's subcommands share.
 */
#ifndef GMEM_TOOL_UTIL_H
#define GMEM_TOOL_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/*
 * parse_size() - a size as the tool's options take it: decimal or 0x hex
 * with an optional binary suffix K, M, G or T (as the trace language's
 * numbers).  False on anything else, a sign, or an overflow.
 */
bool parse_size(const char *s, uint64_t *out);

#endif /* GMEM_TOOL_UTIL_H */
