using System.Net;
using Deepline.Node.Security;
using Deepline.Node.Tests.Http;
using Microsoft.Extensions.DependencyInjection;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Security;

public sealed class KeyReloadTests(SecuredNode node) : IClassFixture<SecuredNode>
{
    [Fact]
    public async Task A_key_added_to_the_file_works_and_a_removed_one_stops_without_a_restart()
    {
        const string NewKey = "a-key-added-while-running-007";
        using var newcomer = node.Client(NewKey);
        Assert.Equal(HttpStatusCode.Unauthorized, (await newcomer.GetAsync("/stats")).StatusCode);

        // Replace the file the way editors do: write a sibling, then rename it over the original.
        var without = SecuredNode.KeysYaml($"  - {{name: late-ops, key: {NewKey}, role: operator}}").Replace($"key: {SecuredNode.Operator}", "key: operator-key-rotated-0000099");
        var temp = node.KeysPath + ".tmp";
        await File.WriteAllTextAsync(temp, without);
        File.Move(temp, node.KeysPath, overwrite: true);

        await Eventually.Until(async () => (await newcomer.GetAsync("/stats")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15), "new key accepted");
        using var old = node.Client(SecuredNode.Operator);
        Assert.Equal(HttpStatusCode.Unauthorized, (await old.GetAsync("/stats")).StatusCode);

        // A file that no longer parses keeps the keys in force rather than locking everyone out.
        await File.WriteAllTextAsync(node.KeysPath, "keys: [ {name: broken");
        node.Services.GetRequiredService<KeyRing>().Reload("test"); // as SIGHUP would
        Assert.Equal(HttpStatusCode.OK, (await newcomer.GetAsync("/stats")).StatusCode);
    }
}
