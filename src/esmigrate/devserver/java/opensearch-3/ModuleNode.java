// The node of OpenSearch 3.x: the module plugins are named ...ModulePlugin, and Node's protected
// constructor takes a PluginInfo per plugin (built here as OpenSearch's own test MockNode does).
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.stream.Collectors;

import org.opensearch.Version;
import org.opensearch.cluster.service.ClusterService;
import org.opensearch.env.Environment;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.plugins.PluginInfo;

final class ModuleNode extends Node {

    private static final List<Class<? extends Plugin>> MODULES = Arrays.asList(
            org.opensearch.transport.Netty4ModulePlugin.class,
            org.opensearch.index.reindex.ReindexModulePlugin.class,
            org.opensearch.painless.PainlessModulePlugin.class,
            org.opensearch.analysis.common.CommonAnalysisModulePlugin.class,
            org.opensearch.index.mapper.MapperExtrasModulePlugin.class,
            org.opensearch.join.ParentJoinModulePlugin.class,
            // ingest pipelines with the script processor: upgrading old writers' documents
            org.opensearch.ingest.common.IngestCommonModulePlugin.class);

    ModuleNode(Environment env) {
        super(env, MODULES.stream().map(ModuleNode::info).collect(Collectors.toList()), true);
    }

    private static PluginInfo info(Class<? extends Plugin> module) {
        return new PluginInfo(
                module.getName(),
                "classpath module",
                "NA",
                Version.CURRENT,
                "21",
                module.getName(),
                null,
                Collections.emptyList(),
                false);
    }

    @Override
    protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {
        // The stock listener writes node/cluster ids into the logging context; an embedded node
        // without the distribution's log4j2.properties has nowhere to put them.
    }
}
