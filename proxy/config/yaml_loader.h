// Reads a YAML document into a Protobuf message through reflection, so that the
// .proto file is the only definition of the config schema. Every error names
// the key path ("clusters[0].shards[1].backends[0].port") and the problem.
#pragma once

#include <google/protobuf/message.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "common/result.h"

namespace shardgate::config {

Result<void> yaml_to_message(const YAML::Node& node, google::protobuf::Message& message,
                             const std::string& path);

}  // namespace shardgate::config
