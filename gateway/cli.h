#pragma once

namespace smtpgate {

// The command line of SPEC section 2. Returns the process exit code.
int runCli(int argc, char** argv);

}  // namespace smtpgate
