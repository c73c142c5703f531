/* fuzz_anthropic.c: arbitrary bytes as Anthropic's Messages API answer,
 * whole and as an event stream, translated to OpenAI's format (the checks
 * are in answer.c). */
#include "answer.h"
#include "fuzz.h"

FUZZ_TARGET(anthropic)
{
    fuzz_answer(UP_ANTHROPIC, data, size);
    return 0;
}
