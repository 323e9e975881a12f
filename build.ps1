#!/usr/bin/env pwsh
# The one build script of Deepline.Actors.
#   ./build.sh run     build and start a node on embedded defaults (config.yaml, SQLite under ./data, 127.0.0.1:8001)
#   ./build.sh test    build and run every test; ends with one line "N passed, N failed, N skipped"
#   ./build.sh build   build everything (Release)
#   ./build.sh bench   list the benchmarks under bench/; ./build.sh bench NAME [options] runs one (NAME --help: its options)
#   ./build.sh pack    the .NET worker SDK's NuGet package into artifacts/
param(
    [Parameter(Position = 0)][ValidateSet('run', 'test', 'build', 'bench', 'pack')][string]$Command = 'build',
    [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest = @()
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot
$solution = 'Deepline.Actors.sln'

function Invoke-Dotnet {
    & dotnet @args
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($args -join ' ') failed with exit code $LASTEXITCODE" }
}

# The test suite starts its own throwaway servers on loopback; their binaries come from Debian's packages.
# Installs what is missing (apt-get, as root or through sudo) or stops at once with one line naming the package.
function Install-TestDependencies {
    $needed = @(
        @{ Test = { [bool](Get-Command redis-server -ErrorAction SilentlyContinue) }; Package = 'redis-server' },
        # clients/python's tests (run by Deepline.Cancellation.Tests) need only the interpreter and its standard library.
        @{ Test = { [bool](Get-Command python3 -ErrorAction SilentlyContinue) }; Package = 'python3' },
        # Debian keeps the server binaries (initdb, postgres) off PATH, under /usr/lib/postgresql/<major>/bin.
        @{ Test = { [bool](Get-ChildItem '/usr/lib/postgresql/*/bin/initdb' -ErrorAction SilentlyContinue) }; Package = 'postgresql' },
        # The dashboard's browser tests drive Debian's Chromium through Playwright; no browser is ever downloaded.
        @{ Test = { Test-Path '/usr/bin/chromium' }; Package = 'chromium' }
    )
    $missing = @($needed | Where-Object { -not (& $_.Test) })
    if ($missing.Count -eq 0) { return }
    $packages = ($missing | ForEach-Object { $_.Package }) -join ' '
    $apt = Get-Command apt-get -ErrorAction SilentlyContinue
    $isRoot = (& id -u) -eq '0'
    $sudo = Get-Command sudo -ErrorAction SilentlyContinue
    if (-not $apt -or (-not $isRoot -and -not $sudo)) {
        Write-Host "test dependencies missing: $packages; install them with: apt-get install -y $packages"
        Write-Host '0 passed, 1 failed, 0 skipped'
        exit 1
    }
    Write-Host "Installing test dependencies: $packages (apt-get)"
    $env:DEBIAN_FRONTEND = 'noninteractive'
    $apt = { param([string[]]$AptArgs) if ($isRoot) { & apt-get @AptArgs } else { & sudo -n apt-get @AptArgs } }
    & $apt @('update', '-qq') 2>&1 | Out-Null
    & $apt (@('install', '-y', '-qq') + @($missing | ForEach-Object { $_.Package })) 2>&1 | Out-Null
    $still = @($missing | Where-Object { -not (& $_.Test) })
    if ($still.Count -gt 0) {
        Write-Host "could not install test dependencies: $(($still | ForEach-Object { $_.Package }) -join ' '); install them with: apt-get install -y $packages"
        Write-Host '0 passed, 1 failed, 0 skipped'
        exit 1
    }
}

switch ($Command) {
    'build' { Invoke-Dotnet build $solution -c Release --nologo -v minimal }
    'run' {
        # Built only when a source is newer than the node's assembly: a restart must not cost a build's minute and output.
        $dll = 'src/Deepline.Node/bin/Release/net10.0/Deepline.Node.dll'
        $inputs = @('src', 'hocon', 'Directory.Build.props', 'Directory.Packages.props', 'global.json') |
            Where-Object { Test-Path $_ } |
            ForEach-Object { Get-ChildItem $_ -Recurse -File } |
            Where-Object { $_.FullName -notmatch '[\\/](bin|obj)[\\/]' }
        $newest = ($inputs | Measure-Object -Property LastWriteTimeUtc -Maximum).Maximum
        if (-not (Test-Path $dll) -or $newest -gt (Get-Item $dll).LastWriteTimeUtc) {
            Invoke-Dotnet build src/Deepline.Node -c Release --nologo -v minimal
        }
        & dotnet src/Deepline.Node/bin/Release/net10.0/Deepline.Node.dll @Rest
        exit $LASTEXITCODE
    }
    'pack' {
        # The .NET worker SDK as a NuGet package (Deepline.Worker.Sdk.<version>.nupkg) in artifacts/.
        Invoke-Dotnet pack src/Deepline.Worker.Sdk -c Release --nologo -v minimal -o (Join-Path $PSScriptRoot 'artifacts')
    }
    'bench' {
        # One benchmark per call, with its own options: each takes different flags, and some run for many minutes.
        $benches = [ordered]@{
            cancel     = @('bench/Deepline.Bench', 'cancel fan-out to workers (Redis and in-cluster), Hangfire comparison')
            throughput = @('bench/Deepline.Bench.Throughput', 'task transitions per second, open runs held, retention soak (--tp-soak-s)')
            dispatch   = @('bench/Deepline.Bench.Dispatch', 'external worker poll, lease and report round trips')
            monitor    = @('bench/Deepline.Bench.Monitor', 'deadlock scans over large run indexes, resource wait-for graphs')
            cluster    = @('bench/Deepline.Bench.Cluster', 'one node vs three over HTTP on PostgreSQL, failover, bulk cancel')
        }
        $name = if ($Rest.Count -gt 0) { $Rest[0] } else { '' }
        if ($name -in @('', 'help', '-h', '--help') -or -not $benches.Contains($name)) {
            if ($name -notin @('', 'help', '-h', '--help')) { Write-Host "unknown benchmark '$name'" }
            Write-Host 'usage: ./build.sh bench NAME [options]   (./build.sh bench NAME --help lists its options)'
            foreach ($b in $benches.GetEnumerator()) { Write-Host ('  {0,-11} {1}' -f $b.Key, $b.Value[1]) }
            Write-Host 'Numbers and how they were taken: docs/benchmarks.md'
            exit $(if ($name -in @('', 'help', '-h', '--help')) { 0 } else { 2 })
        }
        $options = if ($Rest.Count -gt 1) { $Rest[1..($Rest.Count - 1)] } else { @() }
        Invoke-Dotnet run -c Release --project $benches[$name][0] -- @options
    }
    'test' {
        Install-TestDependencies
        Invoke-Dotnet build $solution -c Release --nologo -v minimal
        $results = Join-Path $PSScriptRoot 'TestResults'
        if (Test-Path $results) { Remove-Item $results -Recurse -Force }
        $failedRun = $false
        foreach ($project in Get-ChildItem tests -Filter *.Tests.csproj -Recurse) {
            Write-Host "== $($project.BaseName)"
            & dotnet test $project.FullName -c Release --no-build --nologo `
                --logger "trx;LogFileName=$($project.BaseName).trx" --logger 'console;verbosity=minimal' `
                --results-directory $results --blame-hang-timeout 5m @Rest
            if ($LASTEXITCODE -ne 0) { $failedRun = $true }
        }
        # The HTTP suite again, every node on a throwaway PostgreSQL server of its own: both stores keep every promise.
        # (The cluster tests are PostgreSQL-only already, and a few tests work on the SQLite file itself: not run twice.)
        Write-Host '== Deepline.Node.Tests on PostgreSQL'
        $env:DEEPLINE_TEST_STORE = 'postgresql'
        & dotnet test (Join-Path $PSScriptRoot 'tests/Deepline.Node.Tests/Deepline.Node.Tests.csproj') -c Release --no-build --nologo `
            --filter 'Category!=Cluster&Store!=sqlite' `
            --logger 'trx;LogFileName=Deepline.Node.Tests.postgresql.trx' --logger 'console;verbosity=minimal' `
            --results-directory $results --blame-hang-timeout 5m @Rest
        if ($LASTEXITCODE -ne 0) { $failedRun = $true }
        Remove-Item Env:DEEPLINE_TEST_STORE
        $passed = 0; $failed = 0; $skipped = 0
        foreach ($trx in Get-ChildItem $results -Filter *.trx -ErrorAction SilentlyContinue) {
            [xml]$doc = Get-Content $trx.FullName
            $c = $doc.TestRun.ResultSummary.Counters
            $passed += [int]$c.passed
            $failed += [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted
            # VSTest's TRX leaves notExecuted at 0 for skipped tests; they are the ones counted but not executed.
            $skipped += [int]$c.total - [int]$c.executed
        }
        if ($failedRun -and $failed -eq 0) { $failed = 1 }  # a test host crash leaves no count: never report it green
        Write-Host "$passed passed, $failed failed, $skipped skipped"
        if ($failed -gt 0 -or $passed -eq 0) { exit 1 }
    }
}
