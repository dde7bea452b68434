// Loading, defaulting and validating the proxy's YAML configuration. The result
// is complete (every default filled in) and internally consistent, so the rest
// of the proxy never has to interpret "unset".
#pragma once

#include <string>

#include "common/result.h"
#include "proxy/config/config.pb.h"

namespace shardgate::config {

// Parses YAML text; errors name the key path and the problem.
Result<Config> parse_config(const std::string& yaml_text);

// Reads and parses a file.
Result<Config> load_config_file(const std::string& path);

}  // namespace shardgate::config
