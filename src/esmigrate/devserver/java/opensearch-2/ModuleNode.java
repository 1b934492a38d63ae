// The node of OpenSearch 2.x: Node's protected constructor takes the module plugin classes.
import java.util.Arrays;
import java.util.List;

import org.opensearch.cluster.service.ClusterService;
import org.opensearch.env.Environment;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

final class ModuleNode extends Node {

    private static final List<Class<? extends Plugin>> MODULES = Arrays.asList(
            org.opensearch.transport.Netty4Plugin.class,
            org.opensearch.index.reindex.ReindexPlugin.class,
            org.opensearch.painless.PainlessPlugin.class,
            org.opensearch.analysis.common.CommonAnalysisPlugin.class,
            org.opensearch.index.mapper.MapperExtrasPlugin.class,
            org.opensearch.join.ParentJoinPlugin.class,
            // ingest pipelines with the script processor: upgrading old writers' documents
            org.opensearch.ingest.common.IngestCommonPlugin.class);

    ModuleNode(Environment env) {
        super(env, MODULES, true);
    }

    @Override
    protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {
        // The stock listener writes node/cluster ids into the logging context; an embedded node
        // without the distribution's log4j2.properties has nowhere to put them.
    }
}
