using Deepline.Node.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

public sealed class HostingTests
{
    /// <summary>
    /// The data directory usually lies below the working directory; a configuration file watched for changes there
    /// would wake on every journal write (measured: 8 % of the node's CPU under load).
    /// </summary>
    [Fact]
    public async Task The_node_watches_no_configuration_file()
    {
        var dir = Directory.CreateTempSubdirectory("deepline-hosting-").FullName;
        try
        {
            await using var app = DeeplineNode.Build(SingleNode.LoopbackConfig(dir, Loopback.FreePort()));
            var root = (IConfigurationRoot)app.Services.GetRequiredService<IConfiguration>();
            var files = root.Providers.OfType<FileConfigurationProvider>().ToList();
            Assert.NotEmpty(files);
            Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} is watched for changes"));
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
