/* fuzz_openai.c: arbitrary bytes as an OpenAI-compatible upstream's answer,
 * whole and as an event stream (the checks are in answer.c). */
#include "answer.h"
#include "fuzz.h"

FUZZ_TARGET(openai)
{
    fuzz_answer(UP_OPENAI, data, size);
    return 0;
}
