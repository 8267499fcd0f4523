/* The streaming JSON reader: tokens, escapes, numbers at the 64-bit edges,
 * nesting limits, malformed and truncated input with their positions. */
#include "profile/json.h"
#include "tu.h"

/* Walks a whole document, skipping everything; returns the status and the
 * error text. */
static int walk(const char *s, size_t len, char *msg, size_t size)
{
    tv_json_t j;
    tv_json_init(&j, s, len);
    int rc = tv_json_skip(&j);
    if (rc == 0)
        rc = tv_json_end(&j);
    tv_json_error(&j, msg, size);
    return rc;
}

#define OK(s)                                                           \
    do {                                                                \
        char m_[128];                                                   \
        TU_EQ_INT(walk(s, strlen(s), m_, sizeof m_), 0);                \
    } while (0)
#define BAD(s, status, needle)                                          \
    do {                                                                \
        char m_[128];                                                   \
        TU_EQ_INT(walk(s, strlen(s), m_, sizeof m_), status);           \
        TU_CONTAINS(m_, needle);                                        \
    } while (0)

TU_TEST(json_valid)
{
    OK("{}");
    OK("[]");
    OK(" \n\t{\"a\": [1, -2, 3.5e-3, true, false, null, \"x\"], \"b\": {}}\r\n");
    OK("\"\\ud83d\\ude00 \\u00e9 \\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
    OK("0");
    OK("-0");
    OK("18446744073709551615");
    OK("1E+10");
    /* duplicate keys are the loader's business: both are read */
    OK("{\"a\": 1, \"a\": 2}");
}

TU_TEST(json_malformed)
{
    BAD("", TINYVMI_ETRUNC, "byte 0 (line 1, column 1): value expected");
    BAD("{\"a\": 1", TINYVMI_ETRUNC, "unterminated object");
    BAD("[1, 2", TINYVMI_ETRUNC, "unterminated array");
    BAD("\"abc", TINYVMI_ETRUNC, "unterminated string");
    BAD("\"a\\", TINYVMI_ETRUNC, "unterminated escape");
    BAD("\"\\u12\"", TINYVMI_ETRUNC, "truncated \\u escape");
    BAD("\"\\x\"", TINYVMI_EFORMAT, "byte 1 (line 1, column 2): bad escape");
    BAD("\"\\u12g4\"", TINYVMI_EFORMAT, "bad \\u escape");
    BAD("\"\\udc00\"", TINYVMI_EFORMAT, "lone low surrogate");
    BAD("\"\\ud800\\u0041xxxx\"", TINYVMI_EFORMAT, "without low surrogate");
    BAD("\"a\tb\"", TINYVMI_EFORMAT, "control character");
    BAD("{\"a\" 1}", TINYVMI_EFORMAT, "':' expected");
    BAD("{1: 2}", TINYVMI_EFORMAT, "object key expected");
    BAD("[1 2]", TINYVMI_EFORMAT, "',' or ']' expected");
    BAD("[1,]", TINYVMI_EFORMAT, "trailing ','");
    BAD("{\"a\": 1,}", TINYVMI_EFORMAT, "trailing ','");
    BAD("[1}", TINYVMI_EFORMAT, "',' or ']' expected");
    BAD("01", TINYVMI_EFORMAT, "leading zero");
    BAD("-", TINYVMI_ETRUNC, "truncated number");
    BAD("1.", TINYVMI_ETRUNC, "truncated number");
    BAD("1.e5", TINYVMI_EFORMAT, "no digits after '.'");
    BAD("1e", TINYVMI_ETRUNC, "truncated number");
    BAD("tru", TINYVMI_ETRUNC, "truncated literal");
    BAD("nul1", TINYVMI_EFORMAT, "unexpected character");
    BAD("{} {}", TINYVMI_EFORMAT, "data after the top-level value");
    BAD("{\n  \"a\": [1,\n   x]}", TINYVMI_EFORMAT,
        "byte 16 (line 3, column 4): value expected");
}

TU_TEST(json_depth)
{
    char buf[600];
    memset(buf, '[', 300);
    memset(buf + 300, ']', 300);
    char m[128];
    TU_EQ_INT(walk(buf, sizeof buf, m, sizeof m), TINYVMI_EFORMAT);
    TU_CONTAINS(m, "byte 128 (line 1, column 129): nesting too deep");
    /* exactly the limit is fine */
    TU_EQ_INT(walk(buf + 300 - 128, 256, m, sizeof m), 0);
    tv_json_t j;
    tv_json_init(&j, "[[[1]]]", 7);
    tv_json_set_max_depth(&j, 2);
    TU_EQ_INT(tv_json_skip(&j), TINYVMI_EFORMAT);
}

TU_TEST(json_numbers)
{
    static const struct {
        const char *s;
        bool u_ok;
        uint64_t u;
        bool i_ok;
        int64_t i;
    } cases[] = {
        {"0", true, 0, true, 0},
        {"-0", true, 0, true, 0},
        {"18446744073709551615", true, UINT64_MAX, false, 0},
        {"18446744073709551616", false, 0, false, 0},
        {"99999999999999999999999", false, 0, false, 0},
        {"9223372036854775807", true, INT64_MAX, true, INT64_MAX},
        {"-9223372036854775808", false, 0, true, INT64_MIN},
        {"-9223372036854775809", false, 0, false, 0},
        {"-1", false, 0, true, -1},
        {"1.0", false, 0, false, 0},
        {"1e2", false, 0, false, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tv_json_t j;
        tv_jval_t v;
        tv_json_init(&j, cases[k].s, strlen(cases[k].s));
        TU_EQ_INT(tv_json_next(&j, &v), 0);
        TU_EQ_INT(tv_json_end(&j), 0);
        uint64_t u = 0;
        int64_t i = 0;
        TU_EQ_INT(tv_json_u64(&v, &u), cases[k].u_ok);
        if (cases[k].u_ok)
            TU_EQ_U64(u, cases[k].u);
        TU_EQ_INT(tv_json_i64(&v, &i), cases[k].i_ok);
        if (cases[k].i_ok)
            TU_EQ_INT(i, cases[k].i);
    }
}

TU_TEST(json_strings_and_walk)
{
    const char *doc = "{\"k\\u0065y\": \"caf\\u00e9 \\ud83d\\ude00\\n\","
                      " \"plain\": \"abc\", \"arr\": [1, {\"x\": null}]}";
    tv_json_t j;
    tv_jval_t v, k;
    tv_json_init(&j, doc, strlen(doc));
    TU_EQ_INT(tv_json_next(&j, &v), 0);
    TU_EQ_INT(v.type, TV_J_OBJ);
    TU_EQ_INT(tv_json_key(&j, &k), 1);
    TU_ASSERT(k.escaped);
    TU_ASSERT(tv_json_eq(&k, "key"));
    TU_ASSERT(!tv_json_eq(&k, "ke"));
    TU_ASSERT(!tv_json_eq(&k, "keys"));
    TU_EQ_INT(tv_json_next(&j, &v), 0);
    char out[64];
    size_t n = tv_json_decode(&v, out, sizeof out);
    TU_EQ_U64(n, 11);
    TU_ASSERT(memcmp(out, "caf\xc3\xa9 \xf0\x9f\x98\x80\n", 11) == 0);
    TU_ASSERT(n <= v.len);
    TU_EQ_INT(tv_json_key(&j, &k), 1);
    TU_ASSERT(!k.escaped && tv_json_eq(&k, "plain"));
    /* misuse is an error, not a crash: a key while a value is due */
    tv_json_t copy = j;
    TU_EQ_INT(tv_json_key(&copy, &k), TINYVMI_EFORMAT);
    TU_EQ_INT(tv_json_skip(&j), 0);
    TU_EQ_INT(tv_json_key(&j, &k), 1);
    TU_EQ_INT(tv_json_next(&j, &v), 0);
    TU_EQ_INT(v.type, TV_J_ARR);
    TU_EQ_INT(tv_json_elem(&j), 1);
    TU_EQ_INT(tv_json_next(&j, &v), 0);
    TU_EQ_U64(v.mag, 1);
    TU_EQ_INT(tv_json_elem(&j), 1);
    TU_EQ_INT(tv_json_skip(&j), 0);
    TU_EQ_INT(tv_json_elem(&j), 0);
    TU_EQ_INT(tv_json_key(&j, &k), 0);
    TU_EQ_INT(tv_json_end(&j), 0);
    /* errors are sticky */
    tv_json_init(&j, "[x, 1]", 6);
    TU_EQ_INT(tv_json_next(&j, &v), 0);
    TU_EQ_INT(tv_json_elem(&j), 1);
    TU_EQ_INT(tv_json_next(&j, &v), TINYVMI_EFORMAT);
    TU_EQ_INT(tv_json_elem(&j), TINYVMI_EFORMAT);
    /* decoding into a short buffer stops at a character boundary */
    tv_json_init(&j, "\"\\u00e9\\u00e9\"", 14);
    TU_EQ_INT(tv_json_next(&j, &v), 0);
    TU_EQ_U64(tv_json_decode(&v, out, 3), 2);
}
