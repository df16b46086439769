// SPDX-License-Identifier: MIT
/*
 * util.c - small helpers the gmem tool's subcommands share.
 */
#include <errno.h>
#include <stdlib.h>

#include "util.h"

bool parse_size(const char *s, uint64_t *out)
{
	uint64_t v, mul = 1;
	char *end;

	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		return false;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'K': mul = 1ULL << 10; end++; break;
	case 'M': mul = 1ULL << 20; end++; break;
	case 'G': mul = 1ULL << 30; end++; break;
	case 'T': mul = 1ULL << 40; end++; break;
	case '\0': break;
	default: return false;
	}
	if (*end || (v && mul > UINT64_MAX / v))
		return false;
	*out = v * mul;
	return true;
}
