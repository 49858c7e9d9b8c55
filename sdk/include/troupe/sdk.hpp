// troupe/sdk.hpp
//
// Everything a plugin author includes: Value and its conversions, Worker,
// TaskContext, Call/kw, troupe::arg and TROUPE_PLUGIN. Header-only; needs
// nlohmann-json and Boost headers, never TBB or yaml-cpp.
#pragma once

#include "troupe/sdk/abi.hpp"
#include "troupe/sdk/arg.hpp"
#include "troupe/sdk/call.hpp"
#include "troupe/sdk/config.hpp"
#include "troupe/sdk/descriptor.hpp"
#include "troupe/sdk/errors.hpp"
#include "troupe/sdk/plugin.hpp"
#include "troupe/sdk/task_context.hpp"
#include "troupe/sdk/value.hpp"
#include "troupe/sdk/worker.hpp"
