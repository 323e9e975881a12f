using System.Text;

namespace Deepline.Actors.Workers;

// What a process task prints: bounded tails of stdout and stderr, drained until the tree is gone.
public sealed partial class ProcessHandler
{
    private static async Task Drain(Task readers)
    {
        // The tree is gone, so the pipes are at EOF; the bound only guards against a process we could not reach.
        try { await readers.WaitAsync(OutputDrainWait); }
        catch (TimeoutException) { }
        catch (IOException) { }
    }

    /// <summary>Keeps the last <c>limit</c> characters of a stream, however long it runs.</summary>
    private sealed class TailBuffer(int limit)
    {
        private readonly StringBuilder _text = new();
        private readonly Lock _lock = new();

        public string Text
        {
            get
            {
                lock (_lock) return _text.Length > limit ? _text.ToString(_text.Length - limit, limit) : _text.ToString();
            }
        }

        public async Task DrainAsync(StreamReader reader)
        {
            var buffer = new char[4096];
            int n;
            while ((n = await reader.ReadAsync(buffer)) > 0)
            {
                lock (_lock)
                {
                    _text.Append(buffer, 0, n);
                    if (_text.Length > 2 * limit) _text.Remove(0, _text.Length - limit);
                }
            }
        }
    }
}
