namespace Deepline.Tests.Shared;

/// <summary>Waits on an outcome with a deadline: the tests' only way to wait, never a fixed sleep.</summary>
public static class Eventually
{
    public static async Task Until(Func<Task<bool>> condition, TimeSpan within, string what)
    {
        var deadline = DateTime.UtcNow + within;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not reached within {within.TotalSeconds} s: {what}");
            await Task.Delay(25);
        }
    }

    public static Task Until(Func<bool> condition, TimeSpan within, string what) => Until(() => Task.FromResult(condition()), within, what);
}
