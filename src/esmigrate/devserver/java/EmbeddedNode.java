// Starts one real OpenSearch node inside this JVM, from the server and module jars on the
// classpath (fetched from Maven Central by pom.xml). Used by `esmigrate dev-server`.
//
// Why a launcher of our own: the OpenSearch distribution cannot be downloaded here, but its jars
// can. Node's protected constructor accepts plugin classes found on the classpath, which is how the
// modules (HTTP, reindex, painless, ...) are loaded without a plugins/ folder.
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public final class EmbeddedNode extends Node {

    private static final List<Class<? extends Plugin>> PLUGINS = Arrays.asList(
            org.opensearch.transport.Netty4Plugin.class,
            org.opensearch.index.reindex.ReindexPlugin.class,
            org.opensearch.painless.PainlessPlugin.class,
            org.opensearch.analysis.common.CommonAnalysisPlugin.class,
            org.opensearch.index.mapper.MapperExtrasPlugin.class,
            org.opensearch.join.ParentJoinPlugin.class);

    private EmbeddedNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
        super(env, plugins, true);
    }

    @Override
    protected void configureNodeAndClusterIdStateListener(
            org.opensearch.cluster.service.ClusterService clusterService) {
        // The stock listener writes node/cluster ids into the logging context; an embedded node
        // without the distribution's log4j2.properties has nowhere to put them.
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --name value pairs, got " + args[i]);
            }
            opts.put(args[i].substring(2), args[i + 1]);
        }
        Path home = Paths.get(require(opts, "home")).toAbsolutePath();
        Path data = Paths.get(opts.getOrDefault("data", home.resolve("data").toString())).toAbsolutePath();
        Path logs = home.resolve("logs");
        Path repo = home.resolve("snapshots");
        for (Path p : new Path[] {home, data, logs, repo, home.resolve("config"), home.resolve("plugins")}) {
            Files.createDirectories(p);
        }

        Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", data.toString())
                .put("path.logs", logs.toString())
                .put("path.repo", repo.toString())
                .put("cluster.name", opts.getOrDefault("cluster-name", "esmigrate-dev"))
                .put("node.name", opts.getOrDefault("node-name", "esmigrate-dev-1"))
                .put("discovery.type", "single-node")
                .put("network.host", "127.0.0.1")
                .put("http.port", require(opts, "port"))
                .put("transport.port", opts.getOrDefault("transport-port", "9300-9400"))
                // Development disks are often nearly full; the watermarks would turn indices read-only.
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .put("action.auto_create_index", opts.getOrDefault("auto-create-index", "true"))
                .build();

        LogConfigurator.configureWithoutConfig(settings);
        Environment env = InternalSettingsPreparer.prepareEnvironment(
                settings, new HashMap<>(), home.resolve("config"), () -> settings.get("node.name"));

        EmbeddedNode node = new EmbeddedNode(env, PLUGINS);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "esmigrate-node-shutdown"));
        node.start();
        System.out.println("esmigrate-dev-node started on http://127.0.0.1:" + settings.get("http.port"));
        System.out.flush();
        stopped.await();
    }

    private static String require(Map<String, String> opts, String name) {
        String v = opts.get(name);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + name);
        }
        return v;
    }
}
