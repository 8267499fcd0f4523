/* libFuzzer target: the streaming JSON reader walks (and skips through) any
 * input; strings are decoded and numbers converted on the way. */
#include <stdlib.h>

#include "core/tv.h"
#include "profile/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(tv_json_t *j)
{
    tv_jval_t v, k;
    char out[256];
    /* A bounded explicit walk: each step consumes input or fails. */
    for (size_t steps = 0; steps < 1000000; steps++) {
        int rc;
        if (j->pending) {
            rc = tv_json_next(j, &v);
            if (rc == 0 && v.type == TV_J_STR && v.len <= sizeof out)
                (void)tv_json_decode(&v, out, sizeof out);
            uint64_t u;
            int64_t i;
            if (rc == 0 && v.type == TV_J_NUM) {
                (void)tv_json_u64(&v, &u);
                (void)tv_json_i64(&v, &i);
            }
        } else if (j->depth == 0) {
            break;
        } else if ((j->stack[j->depth - 1] & 0x7f) == TV_J_OBJ) {
            rc = tv_json_key(j, &k);
            if (rc > 0)
                (void)tv_json_eq(&k, "name");
        } else {
            rc = tv_json_elem(j);
        }
        if (rc < 0)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tv_json_t j;
    char msg[160];
    tv_json_init(&j, (const char *)data, size);
    walk(&j);
    (void)tv_json_end(&j);
    tv_json_error(&j, msg, sizeof msg);
    tv_json_init(&j, (const char *)data, size);
    tv_json_set_max_depth(&j, 8);
    if (tv_json_skip(&j) == 0)
        (void)tv_json_end(&j);
    return 0;
}
