// One job's keys (name, pool, task, bound arguments, inputs, limits,
// output, dependencies), then the checks across jobs. Names of jobs and
// pools are taken from the tree, so a job whose other keys are wrong still
// counts as existing for the others' `after:` and `from:`.
#include "job_schema.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include "troupe/detail/spelling.hpp"

namespace troupe::config::detail {
namespace {

const std::vector<std::string> kJobKeys = {"name",       "pool",    "task",    "args",   "kwargs", "inputs",
                                           "chunk_size", "retries", "timeout", "output", "after"};
const std::vector<std::string> kInputKinds = {"items", "range", "lines", "jsonl", "glob", "from"};
const std::vector<std::string> kInputKeys = {"items", "range", "lines", "jsonl", "glob", "from", "key"};

// A cycle longer than this is shown by its ends; the count says the rest.
constexpr std::size_t kCycleShown = 8;

struct Dependency {
  std::string name;
  const TreeNode* node;  // where the name was written
  std::string path;      // jobs[i].after[k], jobs[i].inputs.from
};

struct ReadJob {
  JobSpec spec;
  std::string path;                       // jobs[i]
  const TreeNode* node = nullptr;         // the job's map
  const TreeNode* name_node = nullptr;    // null unless the name is valid
  const TreeNode* output_node = nullptr;  // null when the output is the default
  const TreeNode* input_file = nullptr;   // the lines: or jsonl: value, when it read
  std::vector<Dependency> dependencies;   // after:, then from:
};

bool is_job_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-';
  });
}

// "line 3, column 5", or the override that set it.
std::string place_of(const Location& where) {
  if (where.line > 0) {
    return "line " + std::to_string(where.line) + ", column " + std::to_string(where.column);
  }
  return where.origin ? *where.origin : std::string("an override");
}

std::string in_quotes(const std::string& s) {
  return "'" + s + "'";
}

std::string indexed(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// A whole number of int64, sign allowed (range bounds may be negative).
std::optional<std::int64_t> integer(const TreeNode& node, const std::string& path, ValueReader& r) {
  const std::string expected = "a whole number from -9223372036854775808 to 9223372036854775807";
  if (node.kind != TreeNode::Kind::scalar || !node.plain || node.scalar.empty()) {
    r.fail(node, path, expected);
    return std::nullopt;
  }
  const std::string& s = node.scalar;
  const char* first = s.data() + (s[0] == '+' ? 1 : 0);
  const char* last = s.data() + s.size();
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || end != last || first == last || (s[0] == '+' && s.size() > 1 && s[1] == '-')) {
    r.fail(node, path, expected);
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> name_text(const TreeNode& node, const std::string& path, const std::string& what,
                                     ValueReader& r) {
  auto text = r.string(node, path);
  if (text && text->empty()) {
    r.problems().add(node.where, path, what + " must not be empty");
    return std::nullopt;
  }
  return text;
}

void read_range(const TreeNode& node, const std::string& path, JobInputSpec& inputs, ValueReader& r) {
  if (node.kind != TreeNode::Kind::sequence || node.items.size() < 2 || node.items.size() > 3) {
    r.fail(node, path, "[start, stop] or [start, stop, step] (whole numbers, stop excluded)");
    return;
  }
  std::optional<std::int64_t> bounds[3] = {std::nullopt, std::nullopt, 1};
  for (std::size_t i = 0; i < node.items.size(); ++i) {
    bounds[i] = integer(node.items[i], indexed(path, i), r);
  }
  if (!bounds[0] || !bounds[1] || !bounds[2]) {
    return;
  }
  if (*bounds[2] == 0) {
    r.problems().add(node.items[2].where, indexed(path, 2), "the step of a range must not be 0");
    return;
  }
  inputs.start = *bounds[0];
  inputs.stop = *bounds[1];
  inputs.step = *bounds[2];
}

void read_items(const TreeNode& node, const std::string& path, JobInputSpec& inputs, ValueReader& r) {
  if (node.kind != TreeNode::Kind::sequence) {
    r.fail(node, path, "a list of items");
    return;
  }
  inputs.items.reserve(node.items.size());
  for (std::size_t i = 0; i < node.items.size(); ++i) {
    if (auto item = r.value(node.items[i], indexed(path, i))) {
      inputs.items.push_back(std::move(*item));
    }
  }
}

// A glob pattern is a path with wildcards: relative ones are taken from the
// file's folder like every other path of the file.
void read_glob(const TreeNode& node, const std::string& path, JobInputSpec& inputs, ValueReader& r) {
  if (auto pattern = name_text(node, path, "a glob pattern", r)) {
    const std::filesystem::path p(*pattern);
    inputs.pattern = (p.is_absolute() ? p : r.base_dir() / p).lexically_normal().string();
  }
}

JobInputSpec::Kind kind_of(const std::string& key) {
  static const std::map<std::string, JobInputSpec::Kind> kinds = {
      {"items", JobInputSpec::Kind::items}, {"range", JobInputSpec::Kind::range}, {"lines", JobInputSpec::Kind::lines},
      {"jsonl", JobInputSpec::Kind::jsonl}, {"glob", JobInputSpec::Kind::glob},   {"from", JobInputSpec::Kind::from}};
  return kinds.at(key);
}

std::string default_key(const std::string& kind) {
  return kind == "range" ? "their index" : kind == "lines" ? "their line number" : "their path";
}

void read_inputs(const TreeNode& node, const std::string& path, ReadJob& job, ValueReader& r) {
  if (!r.expect_map(node, path, "a map with one of items, range, lines, jsonl, glob or from")) {
    return;
  }
  r.refuse_unknown_keys(node, path, kInputKeys);
  const TreeNode* kind_key = nullptr;
  const TreeNode* kind_value = nullptr;
  for (const auto& [key, value] : node.entries) {
    if (std::find(kInputKinds.begin(), kInputKinds.end(), key.scalar) == kInputKinds.end()) {
      continue;
    }
    if (kind_key != nullptr) {
      r.problems().add(key.where, join_path(path, key.scalar),
                       in_quotes(key.scalar) + " and " + in_quotes(kind_key->scalar) +
                           " both give the job's items; keep exactly one");
      continue;
    }
    kind_key = &key;
    kind_value = &value;
  }
  if (kind_key == nullptr) {
    r.problems().add(node.where, path, "no items: give exactly one of items, range, lines, jsonl, glob or from");
    return;
  }
  const std::string& kind = kind_key->scalar;
  const std::string at = join_path(path, kind);
  JobInputSpec& inputs = job.spec.inputs;
  inputs.kind = kind_of(kind);
  if (kind == "items") {
    read_items(*kind_value, at, inputs, r);
  } else if (kind == "range") {
    read_range(*kind_value, at, inputs, r);
  } else if (kind == "lines" || kind == "jsonl") {
    if (auto file = r.file_path(*kind_value, at)) {
      inputs.path = *file;
      job.input_file = kind_value;
    }
  } else if (kind == "glob") {
    read_glob(*kind_value, at, inputs, r);
  } else if (auto from = name_text(*kind_value, at, "the upstream job's name", r)) {
    inputs.from = *from;
    job.dependencies.push_back({*from, kind_value, at});
  }
  for (const auto& [key, value] : node.entries) {
    if (key.scalar != "key") {
      continue;
    }
    const std::string key_path = join_path(path, "key");
    if (kind != "items" && kind != "jsonl" && kind != "from") {
      r.problems().add(key.where, key_path,
                       "key: takes a field of JSON object items (items, jsonl or from); " + kind +
                           " items are keyed by " + default_key(kind));
    } else if (auto field = name_text(value, key_path, "the key field", r)) {
      inputs.key_field = *field;
    }
  }
}

void read_after(const TreeNode& node, const std::string& path, ReadJob& job, ValueReader& r) {
  if (node.kind == TreeNode::Kind::scalar) {
    if (auto name = name_text(node, path, "a job name", r)) {
      job.dependencies.insert(job.dependencies.begin(), {*name, &node, path});
    }
    return;
  }
  if (node.kind != TreeNode::Kind::sequence) {
    r.fail(node, path, "a job name or a list of job names");
    return;
  }
  std::vector<Dependency> after;
  for (std::size_t i = 0; i < node.items.size(); ++i) {
    if (auto name = name_text(node.items[i], indexed(path, i), "a job name", r)) {
      after.push_back({*name, &node.items[i], indexed(path, i)});
    }
  }
  // after: entries come before from:'s, whatever order the keys were written in.
  job.dependencies.insert(job.dependencies.begin(), after.begin(), after.end());
}

void read_chunk_size(const TreeNode& node, const std::string& path, JobSpec& spec, ValueReader& r) {
  if (node.kind == TreeNode::Kind::scalar && node.scalar == "auto") {
    spec.chunk_size = 0;
    return;
  }
  if (auto n = r.count(node, path, true)) {
    if (*n == 0) {
      r.problems().add(node.where, path, "must be at least 1 (or auto), found 0");
      return;
    }
    spec.chunk_size = *n;
  }
}

void read_timeout(const TreeNode& node, const std::string& path, JobSpec& spec, ValueReader& r) {
  if (auto timeout = r.duration_or_none(node, path)) {
    if (*timeout && (*timeout)->count() <= 0) {
      r.problems().add(node.where, path, "must be positive, or none for no timeout, found " + node.scalar);
      return;
    }
    spec.timeout = *timeout;
  }
}

void read_pool_name(const TreeNode& node, const std::string& path, const std::vector<std::string>& pool_names,
                    JobSpec& spec, ValueReader& r) {
  auto pool = name_text(node, path, "a pool name", r);
  if (!pool) {
    return;
  }
  if (std::find(pool_names.begin(), pool_names.end(), *pool) == pool_names.end()) {
    const std::string suggestion = troupe::detail::did_you_mean(*pool, pool_names);
    r.problems().add(node.where, path,
                     "no pool " + in_quotes(*pool) + " under pools:" +
                         (pool_names.empty() ? std::string("; the file defines no pools") : suggestion));
    return;
  }
  spec.pool = *pool;
}

void read_task(const TreeNode& node, const std::string& path, JobSpec& spec, ValueReader& r) {
  auto task = name_text(node, path, "a task name", r);
  if (task && (task->find('.') == std::string::npos || task->front() == '.' || task->back() == '.')) {
    r.fail(node, path, "a task name 'plugin.name' (the plugin's name, a dot, the task's name)");
    return;
  }
  if (task) {
    spec.task = *task;
  }
}

void read_bound_arguments(const TreeNode& job_node, const std::string& path, JobSpec& spec, ValueReader& r) {
  if (const TreeNode* args = job_node.find("args")) {
    if (args->kind != TreeNode::Kind::sequence) {
      r.fail(*args, join_path(path, "args"), "a list of positional arguments (passed after the item)");
    } else if (auto v = r.value(*args, join_path(path, "args"))) {
      spec.args = v->get<Args>();
    }
  }
  if (const TreeNode* kwargs = job_node.find("kwargs")) {
    if (kwargs->kind != TreeNode::Kind::map) {
      r.fail(*kwargs, join_path(path, "kwargs"), "a map of keyword arguments");
    } else if (auto v = r.value(*kwargs, join_path(path, "kwargs"))) {
      spec.kwargs = v->get<Kwargs>();
    }
  }
}

ReadJob read_job(const TreeNode& node, std::size_t index, const std::vector<std::string>& pool_names, ValueReader& r) {
  ReadJob job;
  job.path = indexed("jobs", index);
  job.node = &node;
  if (!r.expect_map(node, job.path, "a job: a map with name, pool, task and inputs")) {
    return job;
  }
  r.refuse_unknown_keys(node, job.path, kJobKeys);
  for (const char* required : {"name", "pool", "task", "inputs"}) {
    if (node.find(required) == nullptr) {
      r.problems().add(node.where, join_path(job.path, required), std::string("missing key '") + required + "'");
    }
  }
  JobSpec& spec = job.spec;
  if (const TreeNode* name = node.find("name")) {
    const std::string at = join_path(job.path, "name");
    if (auto text = r.string(*name, at); text && !is_job_name(*text)) {
      r.problems().add(name->where, at,
                       "a job name is letters, digits, '_', '.' and '-' (at least one), found " + describe(*name));
    } else if (text) {
      spec.name = *text;
      job.name_node = name;
    }
  }
  if (const TreeNode* pool = node.find("pool")) {
    read_pool_name(*pool, join_path(job.path, "pool"), pool_names, spec, r);
  }
  if (const TreeNode* task = node.find("task")) {
    read_task(*task, join_path(job.path, "task"), spec, r);
  }
  read_bound_arguments(node, job.path, spec, r);
  if (const TreeNode* inputs = node.find("inputs")) {
    read_inputs(*inputs, join_path(job.path, "inputs"), job, r);
  }
  if (const TreeNode* chunk_size = node.find("chunk_size")) {
    read_chunk_size(*chunk_size, join_path(job.path, "chunk_size"), spec, r);
  }
  if (const TreeNode* retries = node.find("retries")) {
    if (auto n = r.count(*retries, join_path(job.path, "retries"))) {
      spec.retries = *n;
    }
  }
  if (const TreeNode* timeout = node.find("timeout")) {
    read_timeout(*timeout, join_path(job.path, "timeout"), spec, r);
  }
  if (const TreeNode* output = node.find("output")) {
    if (auto file = r.file_path(*output, join_path(job.path, "output")); file && file->filename().empty()) {
      r.fail(*output, join_path(job.path, "output"), "a file path for the records (not a folder)");
    } else if (file) {
      spec.output = *file;
      job.output_node = output;
    }
  } else if (!spec.name.empty()) {
    spec.output = (r.base_dir() / "out" / (spec.name + ".jsonl")).lexically_normal();
  }
  if (const TreeNode* after = node.find("after")) {
    read_after(*after, join_path(job.path, "after"), job, r);
  }
  for (const auto& dependency : job.dependencies) {
    if (std::find(spec.after.begin(), spec.after.end(), dependency.name) == spec.after.end()) {
      spec.after.push_back(dependency.name);
    }
  }
  return job;
}

// The first job of each name; later ones are reported as duplicates.
std::map<std::string, std::size_t> index_names(const std::vector<ReadJob>& jobs, ValueReader& r) {
  std::map<std::string, std::size_t> first;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].name_node == nullptr) {
      continue;
    }
    const auto [it, added] = first.emplace(jobs[i].spec.name, i);
    if (!added) {
      r.problems().add(jobs[i].name_node->where, join_path(jobs[i].path, "name"),
                       "duplicate job name " + in_quotes(jobs[i].spec.name) + " (first at " +
                           place_of(jobs[it->second].name_node->where) + "); job names must be unique");
    }
  }
  return first;
}

struct Edge {
  std::size_t to;
  const Dependency* dependency;
};

// Dependencies naming unknown jobs or the job itself are reported here and
// left out of the graph.
std::vector<std::vector<Edge>> dependency_graph(const std::vector<ReadJob>& jobs,
                                                const std::map<std::string, std::size_t>& names, ValueReader& r) {
  std::vector<std::string> known;
  known.reserve(names.size());
  for (const auto& [name, index] : names) {
    known.push_back(name);
  }
  std::vector<std::vector<Edge>> graph(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    for (const auto& dependency : jobs[i].dependencies) {
      const auto it = names.find(dependency.name);
      if (it == names.end()) {
        r.problems().add(
            dependency.node->where, dependency.path,
            "no job named " + in_quotes(dependency.name) + troupe::detail::did_you_mean(dependency.name, known));
      } else if (dependency.name == jobs[i].spec.name) {
        r.problems().add(dependency.node->where, dependency.path,
                         "job " + in_quotes(dependency.name) + " depends on itself");
      } else {
        graph[i].push_back({it->second, &dependency});
      }
    }
  }
  return graph;
}

std::string cycle_text(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names.size() > kCycleShown && i == kCycleShown / 2) {
      out += " -> ... (" + std::to_string(names.size() - kCycleShown) + " more)";
      i = names.size() - kCycleShown / 2;
    }
    out += (out.empty() ? "" : " -> ") + names[i];
  }
  return out;
}

// Every cycle a depth-first walk in file order meets, each reported once at
// the dependency that closes it. Iterative: a chain of many thousand jobs
// must not exhaust the stack.
void report_cycles(const std::vector<ReadJob>& jobs, const std::vector<std::vector<Edge>>& graph, ValueReader& r) {
  enum class Mark { unseen, open, done };
  std::vector<Mark> marks(graph.size(), Mark::unseen);
  struct Frame {
    std::size_t job;
    std::size_t next_edge;
  };
  for (std::size_t root = 0; root < graph.size(); ++root) {
    if (marks[root] != Mark::unseen) {
      continue;
    }
    std::vector<Frame> stack{{root, 0}};
    marks[root] = Mark::open;
    while (!stack.empty()) {
      Frame& frame = stack.back();
      if (frame.next_edge == graph[frame.job].size()) {
        marks[frame.job] = Mark::done;
        stack.pop_back();
        continue;
      }
      const Edge& edge = graph[frame.job][frame.next_edge++];
      if (marks[edge.to] == Mark::unseen) {
        marks[edge.to] = Mark::open;
        stack.push_back({edge.to, 0});
      } else if (marks[edge.to] == Mark::open) {
        std::vector<std::string> cycle;
        auto it = std::find_if(stack.begin(), stack.end(), [&](const Frame& f) { return f.job == edge.to; });
        for (; it != stack.end(); ++it) {
          cycle.push_back(jobs[it->job].spec.name);
        }
        cycle.push_back(jobs[edge.to].spec.name);
        r.problems().add(
            edge.dependency->node->where, edge.dependency->path,
            "the jobs wait for each other in a cycle: " + cycle_text(cycle) + " (after: and from: must not loop back)");
      }
    }
  }
}

const Location& output_place(const ReadJob& job) {
  return job.output_node != nullptr ? job.output_node->where : job.name_node->where;
}

// An output that is also an input file would be truncated under its reader.

// Where a path leads, symbolic links in its existing part followed: two
// spellings of one file (a linked folder, `a/../b`) compare equal.
std::string file_identity(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
  return (ec ? path : resolved).string();
}

void report_outputs_read_as_inputs(const std::vector<ReadJob>& jobs, ValueReader& r) {
  std::map<std::string, std::size_t> readers;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].input_file != nullptr) {
      readers.emplace(file_identity(jobs[i].spec.inputs.path), i);
    }
  }
  for (const auto& job : jobs) {
    if (job.name_node == nullptr || job.spec.output.empty()) {
      continue;
    }
    const auto it = readers.find(file_identity(job.spec.output));
    if (it == readers.end()) {
      continue;
    }
    const ReadJob& reader = jobs[it->second];
    const std::string who = &reader == &job ? "its own input" : "the input of job " + in_quotes(reader.spec.name);
    r.problems().add(output_place(job), join_path(job.path, "output"),
                     "job " + in_quotes(job.spec.name) + " writes " + job.spec.output.string() + ", which is " + who +
                         " (" + place_of(reader.input_file->where) + "); writing it would destroy what is read");
  }
}

void report_shared_outputs(const std::vector<ReadJob>& jobs, ValueReader& r) {
  std::map<std::string, std::size_t> writers;
  const auto place = output_place;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const ReadJob& job = jobs[i];
    if (job.name_node == nullptr || job.spec.output.empty()) {
      continue;
    }
    const auto [it, added] = writers.emplace(file_identity(job.spec.output), i);
    if (added) {
      continue;
    }
    const ReadJob& first = jobs[it->second];
    if (first.spec.name == job.spec.name) {
      continue;  // a duplicate name: reported as such
    }
    r.problems().add(place(job), join_path(job.path, "output"),
                     "job " + in_quotes(job.spec.name) + " writes " + job.spec.output.string() + ", as job " +
                         in_quotes(first.spec.name) + " does (" + place_of(place(first)) +
                         "); give each job an output of its own");
  }
}

}  // namespace

std::vector<JobSpec> read_jobs(const TreeNode& node, const std::vector<std::string>& pool_names, ValueReader& r) {
  if (is_none(node)) {
    return {};
  }
  if (node.kind != TreeNode::Kind::sequence) {
    r.fail(node, "jobs", "a list of jobs (- name: NAME, pool: POOL, task: plugin.task, inputs: {...})");
    return {};
  }
  std::vector<ReadJob> read;
  read.reserve(node.items.size());
  for (std::size_t i = 0; i < node.items.size(); ++i) {
    read.push_back(read_job(node.items[i], i, pool_names, r));
  }
  const auto names = index_names(read, r);
  report_cycles(read, dependency_graph(read, names, r), r);
  report_shared_outputs(read, r);
  report_outputs_read_as_inputs(read, r);
  std::vector<JobSpec> jobs;
  jobs.reserve(read.size());
  for (auto& job : read) {
    jobs.push_back(std::move(job.spec));
  }
  return jobs;
}

}  // namespace troupe::config::detail
