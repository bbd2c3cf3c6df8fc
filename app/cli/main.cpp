#include "app/cli/command.h"

int main(int argc, char** argv) { return blr::cli::run_cli(argc, argv); }
