using Deepline.Node.Configuration;
using Deepline.Node.Security;

namespace Deepline.Node.Tests.Security;

public sealed class KeysFileTests
{
    private const string Secret = "a-secret-that-must-never-be-printed";

    [Fact]
    public void Json_and_yaml_files_give_the_same_keys()
    {
        var json = KeysFile.Parse($$"""{"keys": [{"name": "ci", "key": "{{Secret}}", "role": "submitter", "client_id": "team-a"}, {"name": "w", "key": "{{Secret}}-2", "role": "worker", "pools": ["gpu", "io"]}]}""", "keys.json");
        var yaml = KeysFile.Parse($"keys:\n  - name: ci\n    key: {Secret}\n    role: submitter\n    client_id: team-a\n  - name: w\n    key: {Secret}-2\n    role: worker\n    pools: [gpu, io]\n", "keys.yaml");

        Assert.Equal(json.Select(k => (k.Name, k.Role, k.ClientId, string.Join(",", k.Pools ?? []))), yaml.Select(k => (k.Name, k.Role, k.ClientId, string.Join(",", k.Pools ?? []))));
        Assert.Equal(new[] { "gpu", "io" }, json[1].Pools!.Value.ToArray());
        Assert.DoesNotContain(Secret, json[0].ToString());
    }

    [Theory]
    [InlineData("""{"keys":[{"name":"a","key":"short","role":"admin"}]}""", "keys[0].key: must be at least 16 characters")]
    [InlineData("""{"keys":[{"name":"a","role":"admin"}]}""", "keys[0]: needs exactly one of \"key\" or \"key_sha256\"")]
    [InlineData("""{"keys":[{"name":"a","key":"SECRET","key_sha256":"00","role":"admin"}]}""", "keys[0]: needs exactly one of")]
    [InlineData("""{"keys":[{"name":"a","key":"SECRET","role":"root"}]}""", "keys[0].role: must be one of submitter, worker, operator, admin")]
    [InlineData("""{"keys":[{"name":"a","key":"SECRET","role":"submitter"}]}""", "keys[0].client_id: a submitter key needs the client_id")]
    [InlineData("""{"keys":[{"name":"a","key":"SECRET","role":"operator","pools":["x"]}]}""", "keys[0].pools: only a worker key serves pools")]
    [InlineData("""{"keys":[{"name":"a","key":"SECRET","role":"admin"},{"name":"a","key":"SECRET-2","role":"admin"}]}""", "keys[1].name: \"a\" is used by another key")]
    [InlineData("""{"keys":[{"name":"a","key_sha256":"xyz","role":"admin"}]}""", "keys[0].key_sha256: must be 64 hex digits")]
    [InlineData("""{"keys":[{"name":"a","key":"SECRET","role":"admin","extra":1}]}""", "keys[0]: unknown field \"extra\"")]
    [InlineData("""{"keys":[]}""", "lists no keys")]
    [InlineData("""{"tokens":[]}""", "must be an object with a \"keys\" list")]
    public void A_bad_file_is_refused_with_a_line_naming_the_entry_and_never_the_key(string text, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => KeysFile.Parse(text.Replace("SECRET", Secret), "keys.json"));
        Assert.Contains(e.Errors, l => l.Contains(expected, StringComparison.Ordinal) && l.StartsWith("orchestrator.auth.keys_file \"keys.json\"", StringComparison.Ordinal));
        Assert.DoesNotContain(Secret, e.Message);
    }

    [Fact]
    public void A_node_with_a_missing_keys_file_does_not_start()
    {
        var d = DeeplineConfig.Defaults;
        var missing = d with { Auth = new AuthConfig("/nonexistent/keys.yaml"), Data = new DataConfig(Directory.CreateTempSubdirectory().FullName) };
        var e = Assert.Throws<ConfigException>(() => DeeplineNode.Build(missing));
        Assert.Equal("orchestrator.auth.keys_file: \"/nonexistent/keys.yaml\" does not exist", e.Message);
    }
}
