/* head_default.c: the heads that ship with junction (the JSON files in
 * classifier/heads/, compiled in by script/embed), so that a daemon scores requests with no
 * file beside it. A starting point: docs/classifier.md says how to fit
 * heads on one's own traffic. */
#include "scoring.h"

#include <string.h>

extern const unsigned char cls_default_head_difficulty_json[], cls_default_head_sensitivity_json[];
extern const size_t cls_default_head_difficulty_json_len, cls_default_head_sensitivity_json_len;

int cls_head_load_default(cls_head **out, const char *target, char *err, size_t errlen)
{
    if (!strcmp(target, "difficulty"))
        return cls_head_parse(out, (const char *)cls_default_head_difficulty_json, cls_default_head_difficulty_json_len,
                              err, errlen);
    if (!strcmp(target, "sensitivity"))
        return cls_head_parse(out, (const char *)cls_default_head_sensitivity_json,
                              cls_default_head_sensitivity_json_len, err, errlen);
    snprintf(err, errlen, "no default head for '%s' (there are: difficulty, sensitivity)", target);
    return -1;
}
