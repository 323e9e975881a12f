using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>Exit codes that scripts can rely on.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int NodeError = 1;
    public const int Usage = 2;
    public const int Unreachable = 3;
}

/// <summary>A failure that ends the command with one readable line and an exit code.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>An answer of the node: status and parsed JSON body (null when there is none).</summary>
public sealed record NodeResponse(HttpStatusCode Status, JsonNode? Body)
{
    public bool IsSuccess => (int)Status is >= 200 and < 300;
}

/// <summary>The CLI's only way to the cluster: the node's HTTP API.</summary>
public sealed class NodeClient(Uri baseUrl, string? adminKey, TimeSpan timeout, string? apiKey = null) : IDisposable
{
    public const string AdminHeader = "X-Deepline-Admin-Key";

    private readonly HttpClient _http = new() { BaseAddress = baseUrl, Timeout = Timeout.InfiniteTimeSpan };

    public Uri BaseUrl => baseUrl;

    /// <summary>Sends a request; a transport failure is exit 3, everything the node answered is returned as is.</summary>
    public async Task<NodeResponse> SendAsync(HttpMethod method, string path, string? jsonBody = null, bool admin = false, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(method, path);
        if (jsonBody is not null)
            request.Content = new StringContent(jsonBody, Encoding.UTF8, "application/json");
        if (!string.IsNullOrEmpty(apiKey))
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        // Without a key the request still goes out: an open node makes its loopback callers admin.
        if (admin && !string.IsNullOrEmpty(adminKey))
            request.Headers.Add(AdminHeader, adminKey);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            using var response = await _http.SendAsync(request, deadline.Token);
            var text = await response.Content.ReadAsStringAsync(deadline.Token);
            return new NodeResponse(response.StatusCode, Parse(text));
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Unreachable, $"the node at {baseUrl} did not answer within {timeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException ex)
        {
            throw new CliException(ExitCodes.Unreachable, $"cannot reach the node at {baseUrl}: {Describe(ex)}");
        }
    }

    /// <summary>Like <see cref="SendAsync"/>, but any answer other than 2xx is the node's error (exit 1).</summary>
    public async Task<JsonNode?> RequireAsync(HttpMethod method, string path, string? jsonBody = null, bool admin = false, CancellationToken ct = default)
    {
        var response = await SendAsync(method, path, jsonBody, admin, ct);
        if (admin && response.Status == HttpStatusCode.Unauthorized && string.IsNullOrEmpty(adminKey) && string.IsNullOrEmpty(apiKey))
            throw new CliException(ExitCodes.NodeError,
                "this command needs the admin key: pass --admin-key (or --key with a key of role admin), or set DEEPLINE_ADMIN_KEY");
        if (!response.IsSuccess) throw NodeError(response);
        return response.Body;
    }

    /// <summary>
    /// GETs a file into <paramref name="destination"/> (written beside it first, moved into place once complete, so a
    /// failed download leaves nothing that looks like a whole file). Returns the response's headers; a non-2xx answer
    /// is the node's error (exit 1). The node may take a while before it answers (a backup is copied first).
    /// </summary>
    public async Task<System.Net.Http.Headers.HttpResponseHeaders> DownloadAsync(string path, string destination, bool admin, TimeSpan answerWithin,
        CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (!string.IsNullOrEmpty(apiKey))
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        if (admin && !string.IsNullOrEmpty(adminKey))
            request.Headers.Add(AdminHeader, adminKey);
        HttpResponseMessage response;
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            deadline.CancelAfter(answerWithin);
            try
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new CliException(ExitCodes.Unreachable, $"the node at {baseUrl} did not answer within {answerWithin.TotalSeconds:0.#} s");
            }
            catch (HttpRequestException ex)
            {
                throw new CliException(ExitCodes.Unreachable, $"cannot reach the node at {baseUrl}: {Describe(ex)}");
            }
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var failed = new NodeResponse(response.StatusCode, Parse(await response.Content.ReadAsStringAsync(ct)));
                if (admin && response.StatusCode == HttpStatusCode.Unauthorized && string.IsNullOrEmpty(adminKey) && string.IsNullOrEmpty(apiKey))
                    throw new CliException(ExitCodes.NodeError,
                        "this command needs the admin key: pass --admin-key (or --key with a key of role admin), or set DEEPLINE_ADMIN_KEY");
                throw NodeError(failed);
            }
            var partial = destination + ".partial";
            try
            {
                await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                {
                    await response.Content.CopyToAsync(file, ct);
                    await file.FlushAsync(ct);
                    file.Flush(flushToDisk: true);
                }
                File.Move(partial, destination, overwrite: true);
            }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException)
            {
                try { File.Delete(partial); } catch (IOException) { }
                if (e is OperationCanceledException) throw;
                throw new CliException(ExitCodes.NodeError, $"the download to {destination} failed: {e.Message}");
            }
            return response.Headers;
        }
    }

    /// <summary>The problem+json answer in one line: "404 Not found: run x not found (field: run_id)".</summary>
    public static CliException NodeError(NodeResponse response)
    {
        var code = (int)response.Status;
        var problem = response.Body as JsonObject;
        var title = Text(problem?["title"]) ?? response.Status.ToString();
        var detail = Text(problem?["detail"]);
        var field = Text(problem?["field"]);
        var line = new StringBuilder().Append(code).Append(' ').Append(title);
        if (detail is not null) line.Append(": ").Append(detail);
        if (field is not null && (detail is null || !detail.Contains(field, StringComparison.Ordinal)))
            line.Append(" (field: ").Append(field).Append(')');
        return new CliException(ExitCodes.NodeError, line.ToString());
    }

    public void Dispose() => _http.Dispose();

    private static JsonNode? Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        try
        {
            return JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            return JsonValue.Create(text.Trim());
        }
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static string Describe(HttpRequestException ex) =>
        ex.InnerException is SocketException socket
            ? socket.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused (is the node running, and on this port?)",
                SocketError.HostNotFound or SocketError.NoData => "host not found",
                _ => socket.Message,
            }
            : ex.Message;
}
