# TinyVMI build.  Everything goes to build/.
#   make            library (.a, .so), headers, build/bin/tinyvmi and examples
#   make demo       boot a real Linux guest under QEMU and introspect it
#   make test       the whole test suite (unit, sanitizers, core check, CLI,
#                   guest lab); ends with "N passed, N failed"
#   make unit       unit tests only (no guests)
#   make bench      benchmarks (not part of make test)
#   make check-core the core is freestanding: no libc, no writable globals
#   make fuzz       fuzz targets (clang + libFuzzer), short runs
#   make install PREFIX=/usr/local

CC      ?= cc
CLANG   ?= clang
PREFIX  ?= /usr/local
B       := build
VERSION := 0.1.0

WARN    := -Wall -Wextra -Wshadow -Wconversion -Wsign-conversion \
           -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wvla -Wformat=2 -Werror
BASE    := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(WARN) -MMD -MP
OPT     ?= -O2 -g
CFLAGS_LIB := $(BASE) $(OPT) -fPIC -fvisibility=hidden
CFLAGS_SAN := $(BASE) -O1 -g -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=all
# The freestanding core: no libc headers beyond the compiler's own, no
# builtins turned into libc calls we did not provide.
CFLAGS_FREE := $(BASE) -DTINYVMI_FREESTANDING -O2 -ffreestanding -fno-builtin -fno-stack-protector \
               -fno-pic -fno-tree-loop-distribute-patterns -nostdinc \
               -isystem $(shell $(CC) -print-file-name=include)

CORE_SRC := $(sort $(wildcard src/core/*.c src/arch/*.c src/profile/*.c \
              src/os/*.c src/os/*/*.c src/config/*.c))
CORE_SRC := $(filter-out src/core/shim_builtins.c,$(CORE_SRC))
HOST_SRC := $(sort $(wildcard src/driver/*/*.c src/hosted/*.c))
LIB_SRC  := $(CORE_SRC) $(HOST_SRC)
TOOL_SRC := $(sort $(wildcard tools/tinyvmi/*.c))
EX_SRC   := $(sort $(wildcard tools/examples/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/*.c))
LAB_SRC  := $(sort $(wildcard tests/lab/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
SAN_OBJ  := $(LIB_SRC:%.c=$(B)/san/%.o)
FREE_OBJ := $(CORE_SRC:%.c=$(B)/free/%.o) $(B)/free/src/core/shim_builtins.o
TOOL_OBJ := $(TOOL_SRC:%.c=$(B)/obj/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/obj/%.o)
UNIT_SAN := $(UNIT_SRC:%.c=$(B)/san/%.o)
EXAMPLES := $(EX_SRC:tools/examples/%.c=$(B)/bin/%)
BENCHES  := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
FUZZERS  := $(FUZZ_SRC:fuzz/%.c=$(B)/fuzz/%)
LABBINS  := $(LAB_SRC:tests/lab/%.c=$(B)/tests/lab/%)

LIBA  := $(B)/lib/libtinyvmi.a
LIBSO := $(B)/lib/libtinyvmi.so
HOST_LIBS := -lm -llzma -lz -lzstd -llz4
# The Xen driver loads libxenctrl at run time; its ABI is per Xen release, so
# the soname of the one built against (libxen-dev) is the one loaded.
XENCTRL_SONAME := $(shell objdump -p /usr/lib/$(shell $(CC) -dumpmachine)/libxenctrl.so \
                    2>/dev/null | awk '/SONAME/ { print $$2 }')
# Xen's headers use GNU C (anonymous unions), hence gnu11 for its files.
$(B)/obj/src/driver/xen/%.o $(B)/san/src/driver/xen/%.o $(B)/fz/src/driver/xen/%.o: \
    XENFLAGS := -std=gnu11 -DTV_XENCTRL_SONAME='"$(XENCTRL_SONAME)"'

.PHONY: all lib tools test unit unit-san check-core bench fuzz install \
        clean format demo
all: lib tools $(B)/tests/unit $(B)/tests/unit-san $(LABBINS)

lib: $(LIBA) $(LIBSO) $(B)/include/libvmi/libvmi.h \
     $(B)/include/tinyvmi/tinyvmi.h
tools: $(B)/bin/tinyvmi $(EXAMPLES)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_LIB) $(XENFLAGS) -c $< -o $@
$(B)/obj/tools/tinyvmi/%.o: tools/tinyvmi/%.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_LIB) -DCLI_VERSION='"$(VERSION)"' -c $< -o $@
$(B)/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_SAN) $(XENFLAGS) -c $< -o $@
$(B)/free/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_FREE) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
$(LIBSO): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libtinyvmi.so.0 -Wl,--no-undefined \
	    -o $@ $^ $(HOST_LIBS)
$(B)/include/%.h: include/%.h
	@mkdir -p $(@D)
	cp $< $@

$(B)/bin/tinyvmi: $(TOOL_OBJ) $(LIBA)
	@mkdir -p $(@D)
	$(CC) -o $@ $(TOOL_OBJ) $(LIBA) $(HOST_LIBS) -ldw -lelf
$(B)/bin/%: $(B)/obj/tools/examples/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) -o $@ $< $(LIBA) $(HOST_LIBS)

$(B)/tests/unit: $(UNIT_OBJ) $(LIBA)
	@mkdir -p $(@D)
	$(CC) -o $@ $(UNIT_OBJ) $(LIBA) $(HOST_LIBS)
$(B)/tests/unit-san: $(UNIT_SAN) $(SAN_OBJ)
	@mkdir -p $(@D)
	$(CC) -fsanitize=address,undefined -o $@ $^ $(HOST_LIBS)

$(B)/tests/lab/%: $(B)/obj/tests/lab/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) -o $@ $< $(LIBA) $(HOST_LIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) -o $@ $< $(LIBA) $(HOST_LIBS)

# The core links against nothing but its own shim: after a relocatable link,
# no symbol may be undefined, and nothing may live in writable data.
check-core: $(FREE_OBJ)
	@mkdir -p $(B)/free
	ld -r -o $(B)/free/core.o $(FREE_OBJ)
	@undef=$$(nm -u $(B)/free/core.o); \
	if [ -n "$$undef" ]; then \
	  echo "check-core: the core references symbols it does not define:"; \
	  echo "$$undef"; exit 1; fi
	@rw=$$(nm $(B)/free/core.o | awk '$$2 ~ /^[bBdDcC]$$/'); \
	if [ -n "$$rw" ]; then \
	  echo "check-core: the core has writable globals:"; echo "$$rw"; \
	  exit 1; fi
	@echo "check-core: $(words $(FREE_OBJ)) objects, freestanding, no" \
	  "undefined symbols, no writable globals"

unit: $(B)/tests/unit $(B)/tests/unit-san
	python3 tests/run.py --only unit

test: all check-core $(BENCHES) $(FUZZERS)
	python3 tests/run.py

demo: lib tools
	python3 tests/guests/demo.py

bench: all $(BENCHES)
	python3 bench/run.py
	python3 bench/bench_os.py
	python3 bench/bench_arch.py
	python3 bench/bench_xen.py

# The library is compiled once for all fuzz targets (instrumented, without
# libFuzzer's main); each target links it with its own harness.
FUZZ_FLAGS := $(BASE) -O1 -g
FUZZ_OBJ := $(LIB_SRC:%.c=$(B)/fz/%.o)
$(B)/fz/%.o: %.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) $(XENFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
	    -c $< -o $@
# Objects made through pattern chains are kept, not deleted as intermediates.
.SECONDARY:
$(B)/fuzz/%: fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined \
	    -o $@ $< $(FUZZ_OBJ) $(HOST_LIBS)
fuzz: $(FUZZERS)
	python3 tests/run.py --only fuzz

install: lib tools
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/include/libvmi \
	    $(DESTDIR)$(PREFIX)/include/tinyvmi \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSO) $(DESTDIR)$(PREFIX)/lib/libtinyvmi.so.$(VERSION)
	ln -sf libtinyvmi.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtinyvmi.so.0
	ln -sf libtinyvmi.so.0 $(DESTDIR)$(PREFIX)/lib/libtinyvmi.so
	install -m 644 include/libvmi/*.h $(DESTDIR)$(PREFIX)/include/libvmi/
	install -m 644 include/tinyvmi/*.h $(DESTDIR)$(PREFIX)/include/tinyvmi/
	install -m 755 $(B)/bin/* $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	    tinyvmi.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tinyvmi.pc

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(B)/obj $(B)/san $(B)/free $(B)/fz $(B)/lib $(B)/bin $(B)/tests \
	    $(B)/bench $(B)/fuzz $(B)/include

-include $(shell find $(B)/obj $(B)/san $(B)/free $(B)/fz -name '*.d' 2>/dev/null)
