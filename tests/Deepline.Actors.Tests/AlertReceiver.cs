using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Deepline.Tests.Shared;

namespace Deepline.Actors.Tests;

/// <summary>
/// A real HTTP receiver on a free loopback port that answers each request with the next scripted behaviour
/// (a status code, or a delay longer than the sender's timeout), and keeps every body it got.
/// </summary>
public sealed class AlertReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<(int Status, TimeSpan Delay)> _script;
    private readonly CancellationTokenSource _stop = new();

    public AlertReceiver(params (int Status, TimeSpan Delay)[] script)
    {
        _script = new ConcurrentQueue<(int, TimeSpan)>(script);
        var port = Loopback.FreePort();
        Url = new Uri($"http://127.0.0.1:{port}/services/T000/B000/SECRET-TOKEN");
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _ = Task.Run(Serve);
    }

    public Uri Url { get; }

    public ConcurrentQueue<JsonObject> Received { get; } = new();

    private async Task Serve()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(async () =>
            {
                using var reader = new StreamReader(ctx.Request.InputStream);
                Received.Enqueue(JsonNode.Parse(await reader.ReadToEndAsync())!.AsObject());
                var (status, delay) = _script.TryDequeue(out var next) ? next : (200, TimeSpan.Zero);
                try
                {
                    if (delay > TimeSpan.Zero) await Task.Delay(delay, _stop.Token);
                    ctx.Response.StatusCode = status;
                    ctx.Response.Close();
                }
                catch (Exception) { }
            });
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
    }
}
