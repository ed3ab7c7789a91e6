# The relay stream hub and the JSON forms of events, a library of their own so that their tests
# need nothing else of the server.
add_library(anm_stream_hub STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/stream_hub.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/event_json.cpp)
target_include_directories(anm_stream_hub PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(anm_stream_hub
  PUBLIC anm::store Poco::Net Poco::JSON Poco::Foundation Threads::Threads
  PRIVATE anm_warnings)
