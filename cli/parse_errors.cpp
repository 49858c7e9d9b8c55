#include "parse_errors.hpp"

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "troupe/detail/spelling.hpp"
#include "troupe/sdk/names.hpp"

namespace troupe::cli {
namespace {

// A word the user typed, as a message shows it: escaped, and cut when long.
std::string shown(std::string_view text) {
  constexpr std::size_t kShown = 60;
  if (text.size() <= kShown) {
    return detail::escaped_name(text);
  }
  // Cut before a character, never inside one (a continuation byte is 10xxxxxx).
  std::size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return detail::escaped_name(text.substr(0, cut)) + "...";
}

// "did you mean" among names that differ from `name` and are long enough
// for a near miss to mean something (never '-h' for any short typo).
std::string suggestion(std::string_view name, const std::vector<std::string>& names) {
  std::vector<std::string> candidates;
  for (const auto& candidate : names) {
    if (candidate.size() > 2 && candidate != name) {
      candidates.push_back(candidate);
    }
  }
  return name.size() > 2 ? detail::did_you_mean(name, candidates) : std::string();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    out += (out.empty() ? "" : ", ") + name;
  }
  return out;
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

// Every spelling of `command`'s named options (--job, -h, --help, ...).
std::vector<std::string> option_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* option : command.get_options()) {
    for (const auto& name : option->get_lnames()) {
      names.push_back("--" + name);
    }
    for (const auto& name : option->get_snames()) {
      names.push_back("-" + name);
    }
  }
  return names;
}

// A positional's name as usage lines write it: FILE, PLUGIN.
std::string positional_name(const CLI::Option& option) {
  std::string name = option.get_name();
  for (char& c : name) {
    c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  return name;
}

// The named option `text` starts with ("--job: 1 required TEXT missing"), if any.
const CLI::Option* option_named_at_start(const CLI::App& command, std::string_view text) {
  const CLI::Option* best = nullptr;
  std::size_t best_length = 0;
  for (const CLI::Option* option : command.get_options()) {
    for (const auto& name : option->get_lnames()) {
      const std::string spelled = "--" + name;
      if (text.starts_with(spelled) && spelled.size() > best_length &&
          (text.size() == spelled.size() || text[spelled.size()] == ':' || text[spelled.size()] == ' ')) {
        best = option;
        best_length = spelled.size();
      }
    }
  }
  return best;
}

std::string unexpected(const CLI::App& command, const std::vector<std::string>& extras) {
  const std::string& first = extras.front();
  std::string message;
  if (first.size() > 1 && first.front() == '-') {
    const std::string name = first.substr(0, first.find('='));
    message = "unknown option '" + shown(name) + "'" + suggestion(name, option_names(command));
  } else {
    message = "unexpected argument '" + shown(first) + "'";
  }
  if (extras.size() > 1) {
    message += " (and " + std::to_string(extras.size() - 1) + " more after it)";
  }
  return message;
}

std::string missing(const CLI::App& command) {
  for (const CLI::Option* option : command.get_options()) {
    if (option->get_required() && option->count() == 0) {
      std::string description = option->get_description();
      if (!description.empty() && description.front() >= 'A' && description.front() <= 'Z') {
        description.front() = static_cast<char>(description.front() - 'A' + 'a');
      }
      if (option->get_positional()) {
        return "the " + positional_name(*option) + " argument" + (description.empty() ? "" : " (" + description + ")") +
               " is missing";
      }
      return option->get_name() + " is required";
    }
  }
  return "an argument is missing";
}

// The message of an error CLI11 words well enough, made to read as ours.
std::string reworded(const CLI::App& command, const CLI::ParseError& error) {
  std::string text = error.what();
  if (const CLI::Option* option = option_named_at_start(command, text)) {
    const std::string name = "--" + option->get_lnames().front();
    if (text.find("required") != std::string::npos && text.find("missing") != std::string::npos) {
      return name + " needs a value";
    }
  }
  // ArgumentMismatch's "--job: At Most 1 required but received 2".
  constexpr std::string_view kAtMost = ": At Most 1 required but received ";
  if (auto at = text.find(kAtMost); at != std::string::npos) {
    return text.substr(0, at) + " is given " + text.substr(at + kAtMost.size()) + " times; give it once";
  }
  constexpr std::string_view kExcludes = " excludes ";
  if (auto at = text.find(kExcludes);
      dynamic_cast<const CLI::ExcludesError*>(&error) != nullptr && at != std::string::npos) {
    return text.substr(0, at) + " and " + text.substr(at + kExcludes.size()) + " exclude each other: give one of them";
  }
  // IsMember's "--progress: bogus not in {auto,always,never}".
  constexpr std::string_view kNotIn = " not in {";
  if (auto colon = text.find(": "), at = text.find(kNotIn);
      colon != std::string::npos && at != std::string::npos && colon < at && text.ends_with('}')) {
    std::string choices = text.substr(at + kNotIn.size(), text.size() - at - kNotIn.size() - 1);
    for (std::size_t comma = choices.find(','); comma != std::string::npos; comma = choices.find(',', comma + 2)) {
      choices.replace(comma, 1, ", ");
    }
    return text.substr(0, colon) + " '" + shown(text.substr(colon + 2, at - colon - 2)) + "' must be one of " + choices;
  }
  // A value that does not convert: "Could not convert: --fsync = maybe".
  constexpr std::string_view kConvert = "Could not convert: ";
  if (auto equals = text.find(" = "); text.starts_with(kConvert) && equals != std::string::npos) {
    const std::string name = text.substr(kConvert.size(), equals - kConvert.size());
    const CLI::Option* option = option_named_at_start(command, name);
    const bool flag = option != nullptr && option->get_expected_max() == 0;
    return name + " does not take the value '" + shown(text.substr(equals + 3)) + "'" +
           (flag ? " (it is a flag: give it alone, or =true or =false)" : "");
  }
  if (!text.empty() && text.front() >= 'A' && text.front() <= 'Z' && text.find(' ') != std::string::npos) {
    text.front() = static_cast<char>(text.front() - 'A' + 'a');
  }
  return text;
}

}  // namespace

int report_parse_error(CLI::App& app, const CLI::ParseError& error) {
  if (dynamic_cast<const CLI::Success*>(&error) != nullptr) {
    const int code = app.exit(error);  // help or --version, on stdout
    return code == 0 ? kOk : kUsageError;
  }
  const std::vector<CLI::App*> chosen = app.get_subcommands();
  const std::vector<std::string> extras = app.remaining(true);
  if (chosen.empty()) {
    const std::vector<std::string> commands = command_names(app);
    std::string message;
    if (!extras.empty() && extras.front().starts_with('-')) {
      message = unexpected(app, extras) + "; the commands are " + joined(commands);
    } else if (!extras.empty()) {
      message = "unknown command '" + shown(extras.front()) + "'; the commands are " + joined(commands) +
                suggestion(extras.front(), commands);
    } else {
      message = "no command given; the commands are " + joined(commands);
    }
    print_error(message + " (see troupe --help)");
    return kUsageError;
  }
  const CLI::App& command = *chosen.front();
  std::string message;
  const bool required = dynamic_cast<const CLI::RequiredError*>(&error) != nullptr;
  // An unknown option comes first: it is likely why a required argument seems missing.
  if (!extras.empty() && (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr ||
                          (required && extras.front().size() > 1 && extras.front().front() == '-'))) {
    message = unexpected(command, extras);
  } else if (required) {
    message = missing(command);
  } else {
    message = reworded(command, error);
  }
  print_error(command.get_name() + ": " + message + " (see troupe " + command.get_name() + " --help)");
  return kUsageError;
}

}  // namespace troupe::cli
