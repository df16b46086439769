# SPDX-License-Identifier: MIT
#
# gmem: a plain GNU Makefile.
#
#   make              build/libgmem.a, build/libgmem.so, the tool ./gmem
#   make check        the above, the unit tests, then tests/run.sh
#   make check-hugetlb  the unit tests, traces and 2M stress again on real
#                     hugetlbfs beside a huge page hog (tests/hugetlb.sh;
#                     reserves huge pages as root, skips without hugetlb)
#   make asan         make check in build-asan/ with ASan+UBSan
#   make tsan         make check in build-tsan/ with TSan
#   make install      PREFIX=/usr/local DESTDIR= (libraries, header, tool,
#                     gmem.pc, man pages, and docs/ and examples/ in
#                     DOCDIR); make uninstall removes them
#   make man          man/man3/, one page per exported function, again from
#                     the kernel-doc of include/gmem.h (man/kdoc2man.py)
#   make bench        the micro-benchmarks (bench/)
#   make bench-instructions  instructions per pin+unpin (callgrind)
#   make clean
#
# One set of variables picks a build: BUILD (the directory), OPT and SAN,
# e.g. `make check BUILD=build-asan OPT=-O1 SAN=-fsanitize=address`; asan
# and tsan are only that.  A build directory remembers its flags and
# rebuilds everything when they change.  CC defaults to gcc (make CC=clang
# works); CFLAGS, CPPFLAGS, LDFLAGS and LDLIBS add to the project's own.

MAKEFLAGS += -r
.SUFFIXES:

ifeq ($(origin CC),default)
CC := gcc
endif

BUILD ?= build
OPT ?= -O2
SAN ?=

ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	      -fno-omit-frame-pointer
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

VERSION := $(shell sed -n 's/.*GMEM_VERSION_STRING "\(.*\)".*/\1/p' include/gmem.h)
MAJOR := $(firstword $(subst ., ,$(VERSION)))

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/gmem

# What `make install` puts in MANDIR and DOCDIR besides the tool's pages.
MAN3_PAGES := $(sort $(wildcard man/man3/*.3))
DOC_FILES := $(sort $(wildcard docs/*.md)) docs/compare.schema.json
EXAMPLE_FILES := $(sort $(wildcard examples/*.c examples/*.trace))

# Libraries the library needs beyond libc (e.g. -lurcu) go here.
GMEM_LIBS := -lurcu-bp

# liburcu-dev is the one package the build needs beyond a C toolchain: on
# a fresh Debian machine tools/deps.sh installs it (as root), or says how.
ifeq ($(wildcard /usr/include/urcu/urcu-bp.h /usr/include/*/urcu/urcu-bp.h \
		  /usr/local/include/urcu/urcu-bp.h),)
$(shell tools/deps.sh liburcu-dev)
endif

GMEM_CPPFLAGS := -D_GNU_SOURCE -Iinclude -Isrc $(CPPFLAGS)
# -fPIC: one set of objects serves the static and the shared library.
GMEM_CFLAGS := -std=c11 -Wall -Wextra -Werror $(OPT) -g -pthread \
	       -fvisibility=hidden -fPIC $(SAN) $(CFLAGS)
GMEM_LDFLAGS := -pthread $(SAN) $(LDFLAGS)
GMEM_LDLIBS := $(GMEM_LIBS) $(LDLIBS)
# Catch undefined symbols in the .so, except where a sanitizer runtime
# provides them only at program link time.
SO_DEFS := $(if $(SAN),,-Wl,-z,defs)

LIB_SRCS := $(wildcard src/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
# Every tools/*.c is part of the gmem tool; all but its main (gmem.c) also
# go into libgmemtools.a, for tests that replay traces.
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/%.o)
TOOLLIB_OBJS := $(filter-out $(BUILD)/tools/gmem.o,$(TOOL_OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_OBJS:%.o=%)

STATIC := $(BUILD)/libgmem.a
TOOLLIB := $(BUILD)/libgmemtools.a
SHARED := $(BUILD)/libgmem.so.$(VERSION)
SHARED_LINKS := $(BUILD)/libgmem.so.$(MAJOR) $(BUILD)/libgmem.so
TOOL := $(BUILD)/gmem

# The top-level ./gmem is the default build's tool.
ifeq ($(BUILD),build)
TOP_TOOL := gmem
endif

# The stress program builds the library again with random yields at lock
# boundaries (-DGMEM_RACE_YIELD), to widen race windows.
STRESS := $(BUILD)/tests/stress/stress

.PHONY: all tests check check-hugetlb asan tsan stress model fuzz install \
	uninstall man clean FORCE
.DEFAULT_GOAL := all

all: $(STATIC) $(SHARED) $(SHARED_LINKS) $(TOOL) $(TOP_TOOL)

tests: all $(UNIT_BINS) $(STRESS)

check: tests
	tests/run.sh $(BUILD)

check-hugetlb: tests
	tests/hugetlb.sh $(BUILD)

asan:
	$(MAKE) check BUILD=build-asan OPT=-O1 SAN='$(ASAN_FLAGS)'

tsan:
	$(MAKE) check BUILD=build-tsan OPT=-O1 SAN='$(TSAN_FLAGS)'

# Longer runs than make check's: stress (STRESS_SECONDS each), the model
# checker, the fuzzer (FUZZ_SECONDS).
STRESS_SECONDS ?= 20
FUZZ_SECONDS ?= 60
stress:
	tests/stress/run.sh build/stress $(STRESS_SECONDS)

model:
	model/check.sh

fuzz:
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# Micro-benchmarks with kernel anchors (bench/bench.c): `make bench` builds
# and runs the full set; bench-quick is the smoke run (a few seconds).
BENCH := $(BUILD)/bench/bench
PINLOOP := $(BUILD)/bench/pinloop
.PHONY: bench bench-quick bench-instructions
bench: $(BENCH)
	$(BENCH)

bench-quick: $(BENCH)
	$(BENCH) --quick

# Instructions per pin+unpin pair, counted by callgrind (needs valgrind).
bench-instructions: $(PINLOOP)
	bench/instructions.sh $(BUILD)

$(PINLOOP): bench/pinloop.c include/gmem.h $(STATIC) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(GMEM_CPPFLAGS) $(GMEM_CFLAGS) -o $@ bench/pinloop.c $(STATIC) \
		$(GMEM_LDFLAGS) $(GMEM_LDLIBS)

$(BENCH): bench/bench.c include/gmem.h $(STATIC) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(GMEM_CPPFLAGS) $(GMEM_CFLAGS) -o $@ bench/bench.c $(STATIC) \
		$(GMEM_LDFLAGS) $(GMEM_LDLIBS)

# tools/hog.c: test pools on real hugetlbfs beside a huge page hog.
$(STRESS): $(LIB_SRCS) tests/stress/stress.c tools/hog.c tools/hog.h \
	   $(wildcard src/*.h) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(GMEM_CPPFLAGS) -DGMEM_RACE_YIELD $(GMEM_CFLAGS) -o $@ \
		$(LIB_SRCS) tests/stress/stress.c tools/hog.c $(GMEM_LDFLAGS) \
		$(GMEM_LDLIBS)

# Rebuild everything in $(BUILD) when the flags change.
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(GMEM_CPPFLAGS) $(GMEM_CFLAGS) $(GMEM_LDFLAGS) $(GMEM_LDLIBS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(GMEM_CPPFLAGS) $(GMEM_CFLAGS) -MMD -MP -c $< -o $@

$(STATIC): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(TOOLLIB): $(TOOLLIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libgmem.so.$(MAJOR) $(SO_DEFS) \
		$(GMEM_LDFLAGS) -o $@ $^ $(GMEM_LDLIBS)

$(SHARED_LINKS): $(SHARED)
	ln -sf libgmem.so.$(VERSION) $@

$(TOOL): $(TOOL_OBJS) $(STATIC)
	$(CC) $(GMEM_LDFLAGS) -o $@ $(TOOL_OBJS) $(STATIC) $(GMEM_LDLIBS)

gmem: $(TOOL)
	cp $< $@

# Each tests/unit/test_*.c is a program of its own.
$(UNIT_BINS): %: %.o $(TOOLLIB) $(STATIC)
	$(CC) $(GMEM_LDFLAGS) -o $@ $< $(TOOLLIB) $(STATIC) $(GMEM_LDLIBS)

# gmem.pc is made of install variables: it follows them through a stamp
# that holds their values, rewritten only when they change (as the flags'
# stamp does), so that `make install PREFIX=...` never ships a .pc made for
# another prefix.
PC_STAMP := $(BUILD)/.pc-vars
PC_NOW := prefix=$(PREFIX) libdir=$(LIBDIR) includedir=$(INCLUDEDIR) \
	version=$(VERSION) libs=$(GMEM_LIBS)
$(PC_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(PC_NOW)' | cmp -s - $@ || echo '$(PC_NOW)' > $@

$(BUILD)/gmem.pc: include/gmem.h Makefile $(PC_STAMP)
	@mkdir -p $(@D)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' \
		'includedir=$(INCLUDEDIR)' '' 'Name: gmem' \
		'Description: guest memory on gigantic pages with safe in-place conversion' \
		'Version: $(VERSION)' 'Cflags: -I$${includedir}' \
		'Libs: -L$${libdir} -lgmem' \
		'Libs.private: -pthread $(GMEM_LIBS)' > $@

install: all $(BUILD)/gmem.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 $(TOOL) $(DESTDIR)$(BINDIR)/gmem
	install -m 644 include/gmem.h $(DESTDIR)$(INCLUDEDIR)/gmem.h
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libgmem.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libgmem.so.$(VERSION)
	ln -sf libgmem.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libgmem.so.$(MAJOR)
	ln -sf libgmem.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libgmem.so
	install -m 644 $(BUILD)/gmem.pc $(DESTDIR)$(LIBDIR)/pkgconfig/gmem.pc
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(MANDIR)/man5
	install -m 644 man/gmem.1 $(DESTDIR)$(MANDIR)/man1/gmem.1
	install -m 644 man/libgmem.3 $(DESTDIR)$(MANDIR)/man3/libgmem.3
	install -m 644 man/gmem-trace.5 $(DESTDIR)$(MANDIR)/man5/gmem-trace.5
	install -m 644 $(MAN3_PAGES) $(DESTDIR)$(MANDIR)/man3
	install -d $(DESTDIR)$(DOCDIR)/examples
	install -m 644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)
	install -m 644 $(EXAMPLE_FILES) $(DESTDIR)$(DOCDIR)/examples

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gmem $(DESTDIR)$(INCLUDEDIR)/gmem.h \
		$(DESTDIR)$(LIBDIR)/libgmem.a \
		$(DESTDIR)$(LIBDIR)/libgmem.so.$(VERSION) \
		$(DESTDIR)$(LIBDIR)/libgmem.so.$(MAJOR) \
		$(DESTDIR)$(LIBDIR)/libgmem.so \
		$(DESTDIR)$(LIBDIR)/pkgconfig/gmem.pc \
		$(DESTDIR)$(MANDIR)/man1/gmem.1 \
		$(DESTDIR)$(MANDIR)/man3/libgmem.3 \
		$(DESTDIR)$(MANDIR)/man5/gmem-trace.5 \
		$(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN3_PAGES))) \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOC_FILES))) \
		$(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(notdir $(EXAMPLE_FILES)))
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null

# The generated pages are committed, so that installing needs no python3;
# tests/ship/man3.sh fails when they differ from what this makes.
man:
	rm -f man/man3/*.3
	python3 man/kdoc2man.py include/gmem.h man/man3

clean:
	rm -rf $(sort build build-asan build-tsan $(BUILD)) gmem

-include $(LIB_OBJS:.o=.d) $(TOOL_OBJS:.o=.d) $(UNIT_OBJS:.o=.d)
