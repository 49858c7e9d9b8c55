#include "shared_tasks.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "chaos_journal.hpp"

namespace troupe::testing {

namespace {

// A value that checks itself: a reader that saw half of one write would
// find its parts disagree.
Value chaos_value(std::int64_t n) {
  return Value{{"n", n},
               {"fill", std::string(static_cast<std::size_t>(n % 61), static_cast<char>('a' + n % 26))},
               {"triple", 3 * n}};
}

bool whole(const Value& v) {
  if (!v.is_object() || !v.contains("n") || !v.contains("fill") || !v.contains("triple")) {
    return false;
  }
  const auto n = v["n"].get<std::int64_t>();
  return v["triple"].get<std::int64_t>() == 3 * n && v["fill"] == chaos_value(n)["fill"];
}

ChaosJournal& map_journal(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error("cannot open the chaos journal " + path);
  }
  void* at = ::mmap(nullptr, sizeof(ChaosJournal), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (at == MAP_FAILED) {
    throw std::runtime_error("cannot map the chaos journal " + path);
  }
  return *static_cast<ChaosJournal*>(at);
}

// Adds and updates until told to stop, saying what it is doing in the journal.
std::int64_t chaos(TaskContext& ctx, const std::string& counter_name, const std::string& dict_name,
                   const std::string& journal_path, std::int64_t keys) {
  ChaosJournal& j = map_journal(journal_path);
  const SharedCounter counter = ctx.counter(counter_name);
  const SharedDict dict = ctx.dict(dict_name);
  j.pid.store(::getpid());
  std::int64_t rounds = 0;
  for (; j.stop.load() == 0; ++rounds) {
    j.phase.store(chaos_adding);
    counter.add(1);
    j.adds.fetch_add(1);
    j.phase.store(chaos_idle);

    const std::string key = "k" + std::to_string(rounds % keys);
    j.phase.store(chaos_updating);
    dict.update(key, [&](std::optional<Value> old) -> std::optional<Value> {
      j.phase.store(chaos_in_fn);
      if (old && !whole(*old)) {
        j.torn.fetch_add(1);
      }
      Value next = chaos_value(old ? (*old)["n"].get<std::int64_t>() + 1 : 1);
      j.phase.store(chaos_updating);
      return next;
    });
    j.updates.fetch_add(1);
    j.phase.store(chaos_idle);

    if (const auto seen = dict.get(key); !seen || !whole(*seen)) {
      j.torn.fetch_add(1);
    }
  }
  ::munmap(&j, sizeof j);
  return rounds;
}

}  // namespace

void add_shared_tasks(PluginBuilder& plugin) {
  plugin.task(
      "shared_add",
      [](TaskContext& ctx, const std::string& name, std::int64_t times, std::int64_t delta) {
        const SharedCounter counter = ctx.counter(name);
        std::int64_t last = 0;
        for (std::int64_t i = 0; i < times; ++i) {
          last = counter.add(delta);
        }
        return last;
      },
      "Add delta to the shared counter `name`, `times` times; the last value add returned", arg("name"), arg("times"),
      arg("delta") = 1);
  plugin.task(
      "shared_load", [](TaskContext& ctx, const std::string& name) { return ctx.counter(name).load(); },
      "The shared counter's value", arg("name"));
  plugin.task(
      "shared_increment",
      [](TaskContext& ctx, const std::string& dict, const std::string& key, std::int64_t times) {
        const SharedDict d = ctx.dict(dict);
        for (std::int64_t i = 0; i < times; ++i) {
          d.update(key, [](std::optional<Value> old) -> std::optional<Value> {
            return old ? old->get<std::int64_t>() + 1 : 1;
          });
        }
        return times;
      },
      "Add 1 to the integer at `key` of the shared dict, `times` times, each under the entry's lock", arg("dict"),
      arg("key"), arg("times"));
  plugin.task(
      "shared_get",
      [](TaskContext& ctx, const std::string& dict, const std::string& key) {
        return ctx.dict(dict).get(key).value_or(Value{{"absent", true}});
      },
      "The value at `key`, or {\"absent\": true}", arg("dict"), arg("key"));
  plugin.task(
      "shared_set",
      [](TaskContext& ctx, const std::string& dict, const std::string& key, const Value& value) {
        ctx.dict(dict).set(key, value);
        return true;
      },
      "Set `key` of the shared dict to `value`", arg("dict"), arg("key"), arg("value"));
  plugin.task(
      "shared_erase",
      [](TaskContext& ctx, const std::string& dict, const std::string& key) { return ctx.dict(dict).erase(key); },
      "Erase `key`; whether it was there", arg("dict"), arg("key"));
  plugin.task(
      "shared_snapshot",
      [](TaskContext& ctx, const std::string& dict) {
        Value all = Value::object();
        for (auto& [key, value] : ctx.dict(dict).snapshot()) {
          all[key] = std::move(value);
        }
        return all;
      },
      "Every entry of the shared dict", arg("dict"));
  plugin.task("shared_chaos", chaos,
              "Add to `counter` and update `dict` (keys k0..k<keys-1>) until the journal says stop, journaling "
              "each call that returned; the rounds run",
              arg("counter"), arg("dict"), arg("journal"), arg("keys"));
}

}  // namespace troupe::testing
