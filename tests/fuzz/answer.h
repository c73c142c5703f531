/* answer.h: one provider's answers, whole and streamed, as fuzz_openai.c
 * and fuzz_anthropic.c feed them (shared so both check the same promises). */
#ifndef JUNCTION_FUZZ_ANSWER_H
#define JUNCTION_FUZZ_ANSWER_H

#include "upstream.h"

#include <stddef.h>
#include <stdint.h>

/* The bytes as a whole answer body for `provider`'s translator, then as its
 * event stream: through the SSE parser into the provider's event handler,
 * as the upstream client runs them. */
void fuzz_answer(up_provider provider, const uint8_t *data, size_t size);

#endif
