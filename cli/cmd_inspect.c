/* cmd_inspect.c: `junction inspect FILE`: a GGUF file's metadata and tensors. */
#include "commands.h"
#include "localengine.h"

#include <stdio.h>
#include <string.h>

int cmd_inspect(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc == 2 ? stdout : stderr, "usage: junction inspect FILE.gguf\n\n"
                "Print a GGUF file's header, metadata and tensor table, after checking it\n"
                "against its length (a damaged file gets an error naming what is wrong).\n");
        return argc == 2 ? 0 : 2;
    }
    char err[1024];
    if (eng_inspect(argv[1], stdout, err, sizeof(err)) != 0) {
        fprintf(stderr, "junction inspect: %s\n", err);
        return 1;
    }
    return 0;
}
