using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

/// <summary>
/// Where the measured window's allocations go, by type: the runtime's AllocationTick event fires about once per 100 KB
/// allocated and names the type of the object that crossed the mark, so the counts are a sample proportional to bytes
/// (--tp-alloc-types N prints the top N). The GC's share of the process CPU follows these bytes.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;

    /// <summary>How many types --tp-alloc-types asks for; 0: no sampling.</summary>
    public static int Top { get; set; }
    private readonly ConcurrentDictionary<string, long> _bytes = new();
    private volatile bool _on;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, GcKeyword);
    }

    public void Start()
    {
        _bytes.Clear();
        _on = true;
    }

    public IReadOnlyList<(string Type, double Share)> Stop(int top)
    {
        _on = false;
        var total = Math.Max(1, _bytes.Values.Sum());
        return [.. _bytes.OrderByDescending(kv => kv.Value).Take(top).Select(kv => (kv.Key, (double)kv.Value / total))];
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_on || e.EventName is not "GCAllocationTick_V4" and not "GCAllocationTick_V3" || e.Payload is null) return;
        var i = e.PayloadNames!.IndexOf("TypeName");
        var amount = e.PayloadNames.IndexOf("AllocationAmount64");
        if (i < 0) return;
        var bytes = amount >= 0 ? Convert.ToInt64(e.Payload[amount]) : 100_000;
        _bytes.AddOrUpdate((string)e.Payload[i]!, bytes, (_, b) => b + bytes);
    }
}
