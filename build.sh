#!/usr/bin/env bash
# Bootstrap only: restore the local PowerShell tool, then hand over to build.ps1 (the real build script).
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet tool restore >/dev/null
exec dotnet pwsh -NoLogo -NoProfile -File build.ps1 "$@"
