/* commands.h: the subcommands of the junction binary, one file each. */
#ifndef JUNCTION_COMMANDS_H
#define JUNCTION_COMMANDS_H

/* Each takes the arguments after its name (argv[0] is the subcommand) and
 * returns the process exit status. */
int cmd_serve(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_route(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_models(int argc, char **argv);

#endif
