/* fuzz_gguf.c: arbitrary bytes as a model file.
 *
 * A GGUF file comes from wherever the operator downloaded it, so the reader
 * must survive anything. The input goes through what `junction inspect`
 * and `junction serve --model` do with a file: the header, metadata and
 * tensor table (eng_inspect prints every value), then the model loader
 * (hyperparameters, the tensor shapes, the vocabulary). A file that loads
 * must keep the loader's promises: special token ids inside the
 * vocabulary and every token's text readable. A file that is refused must
 * say why.
 */
#include "fuzz.h"
#include "localengine.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void check_loaded(const eng_model *m)
{
    const eng_model_info *info = eng_model_get_info(m);
    int n = info->n_vocab;
    if (n <= 0) fuzz_fail("a loaded model has %d tokens", n);
    int bos = eng_token_bos(m), eos = eng_token_eos(m);
    if (bos < 0 || bos >= n || eos < 0 || eos >= n)
        fuzz_fail("BOS %d or EOS %d lies outside the %d-token vocabulary", bos, eos, n);
    char piece[64];
    for (int id = 0; id < n; id++) eng_token_to_piece(m, id, piece, sizeof(piece));
    int ids[64];
    static const char text[] = "Hello, world! \xe2\x96\x81 <s> \xff\xfe";
    int k = eng_tokenize(m, text, sizeof(text) - 1, true, ids, 64);
    if (k < 1) fuzz_fail("tokenizing a short text gave %d tokens", k);
    for (int i = 0; i < k && i < 64; i++)
        if (ids[i] < 0 || ids[i] >= n) fuzz_fail("token id %d outside the %d-token vocabulary", ids[i], n);
}

FUZZ_TARGET(gguf)
{
    static FILE *devnull;
    if (!devnull && !(devnull = fopen("/dev/null", "w"))) fuzz_fail("cannot open /dev/null");
    char path[64], err[512] = "";
    int fd = fuzz_memfile(data, size, path, sizeof(path));
    if (eng_inspect(path, devnull, err, sizeof(err)) != 0 && !err[0])
        fuzz_fail("eng_inspect refused a file without saying why");
    eng_model *m = NULL;
    err[0] = '\0';
    if (eng_model_load(&m, path, err, sizeof(err)) == 0) {
        check_loaded(m);
        eng_model_free(m);
    } else if (!err[0]) {
        fuzz_fail("eng_model_load refused a file without saying why");
    }
    close(fd);
    return 0;
}
