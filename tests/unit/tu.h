/*
 * A small unit-test framework.  Each TU_TEST registers itself; the runner
 * (tests/run.py) lists them with `unit --list` and runs each by name in its
 * own process under a timeout, so a crash or hang fails one test only.
 */
#ifndef TU_H
#define TU_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tinyvmi/tinyvmi.h>

typedef void (*tu_fn)(void);
/* Allocator hooks over malloc for instances made in tests. */
void *tu_alloc(void *ctx, void *ptr, size_t old_size, size_t new_size);
extern const tinyvmi_hooks_t tu_hooks;
void tu_register(const char *name, tu_fn fn);
/* Where test data lives (env TU_DATA, default tests/data). */
const char *tu_data_dir(void);
/* A fresh scratch directory for this test (removed by the runner). */
const char *tu_tmp_dir(void);

extern int tu_failures;

#define TU_TEST(name)                                                   \
    static void tu_test_##name(void);                                   \
    __attribute__((constructor)) static void tu_reg_##name(void)        \
    {                                                                   \
        tu_register(#name, tu_test_##name);                             \
    }                                                                   \
    static void tu_test_##name(void)

#define TU_FAIL_(...)                                                   \
    do {                                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                 \
        fprintf(stderr, __VA_ARGS__);                                   \
        fputc('\n', stderr);                                            \
        tu_failures++;                                                  \
    } while (0)

/* Assertions stop the test at the first failure. */
#define TU_ASSERT(c)                                                    \
    do {                                                                \
        if (!(c)) {                                                     \
            TU_FAIL_("assertion failed: %s", #c);                       \
            return;                                                     \
        }                                                               \
    } while (0)

#define TU_EQ_U64(a, b)                                                 \
    do {                                                                \
        uint64_t tu_a_ = (uint64_t)(a), tu_b_ = (uint64_t)(b);          \
        if (tu_a_ != tu_b_) {                                           \
            TU_FAIL_("%s == %s: 0x%" PRIx64 " != 0x%" PRIx64, #a, #b,   \
                     tu_a_, tu_b_);                                     \
            return;                                                     \
        }                                                               \
    } while (0)

#define TU_EQ_INT(a, b)                                                 \
    do {                                                                \
        long long tu_a_ = (long long)(a), tu_b_ = (long long)(b);       \
        if (tu_a_ != tu_b_) {                                           \
            TU_FAIL_("%s == %s: %lld != %lld", #a, #b, tu_a_, tu_b_);   \
            return;                                                     \
        }                                                               \
    } while (0)

#define TU_EQ_STR(a, b)                                                 \
    do {                                                                \
        const char *tu_a_ = (a), *tu_b_ = (b);                          \
        if (!tu_a_ || !tu_b_ || strcmp(tu_a_, tu_b_) != 0) {            \
            TU_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b,              \
                     tu_a_ ? tu_a_ : "(null)", tu_b_ ? tu_b_ : "(null)"); \
            return;                                                     \
        }                                                               \
    } while (0)

/* Substring check, for error messages. */
#define TU_CONTAINS(hay, needle)                                        \
    do {                                                                \
        const char *tu_h_ = (hay), *tu_n_ = (needle);                   \
        if (!tu_h_ || !strstr(tu_h_, tu_n_)) {                          \
            TU_FAIL_("\"%s\" does not contain \"%s\"",                  \
                     tu_h_ ? tu_h_ : "(null)", tu_n_);                  \
            return;                                                     \
        }                                                               \
    } while (0)

/* splitmix64: a small reproducible generator for tests that build random
 * tables (the state is the caller's). */
static inline uint64_t tu_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
