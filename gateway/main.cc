#include <exception>
#include <cstdio>

#include "gateway/cli.h"

int main(int argc, char** argv) {
  try {
    return smtpgate::runCli(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smtpgate: fatal: %s\n", e.what());
    return 1;
  }
}
