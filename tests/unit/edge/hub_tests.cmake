# Unit tests of the relay stream hub and the event JSON forms, against a real SQLite store and
# real loopback sockets. Included from CMakeLists.txt beside it.
add_executable(anm_event_json_test ${CMAKE_CURRENT_LIST_DIR}/event_json_test.cpp)
target_link_libraries(anm_event_json_test
  PRIVATE anm_stream_hub Poco::JSON Poco::Foundation GTest::gtest_main anm_warnings)
gtest_discover_tests(anm_event_json_test DISCOVERY_MODE PRE_TEST)

# Also checks the edge's accepted connections (socket options the streams inherit), hence
# anm_edge_lib.
add_executable(anm_stream_hub_test ${CMAKE_CURRENT_LIST_DIR}/stream_hub_test.cpp)
target_link_libraries(anm_stream_hub_test
  PRIVATE anm_stream_hub anm_edge_lib anm::store Poco::Net Poco::JSON Poco::Foundation
          Threads::Threads GTest::gtest_main anm_warnings)
gtest_discover_tests(anm_stream_hub_test DISCOVERY_MODE PRE_TEST)
