// CLI11's refusals of a command line, said the troupe way: every one on
// stderr as `troupe: error: SUBCOMMAND: what was wrong (see troupe
// SUBCOMMAND --help)`, naming the option, argument or command at fault,
// with the choices where there are few. Help and --version still print
// as CLI11 prints them.
#pragma once

namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace troupe::cli {

// Reports `error`, thrown by app.parse(); returns the exit code: 0 for
// help and --version, 2 (usage) for everything else.
int report_parse_error(CLI::App& app, const CLI::ParseError& error);

}  // namespace troupe::cli
